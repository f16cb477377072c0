-- Asterisk PBX: SIP/PJSIP/IAX2 authentication failures, unknown peers/endpoints, ACL rejections,
-- dial-plan probing, AMI login failures and security events, Asterisk 1.8 .. 21, from the
-- "messages"/"security" log files or syslog:
--   [2024-05-14 10:11:12] NOTICE[1234] chan_sip.c: Registration from '"100" <sip:100@192.0.2.1>' failed for '203.0.113.5:5060' - Wrong password
--   [2024-05-14 10:11:12] NOTICE[1234] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:100@192.0.2.1>' failed for '203.0.113.5:5060' (callid: abc) - No matching endpoint found
--   [2024-05-14 10:11:12] NOTICE[1234][C-0000001a] chan_sip.c: Call from '' (203.0.113.5:5060) to extension '011972...' rejected because extension not found in context 'public'.
--   [2024-05-14 10:11:12] NOTICE[1234] manager.c: 203.0.113.5 failed to authenticate as 'admin'
--   [2024-05-14 10:11:12] SECURITY[1234] res_security_log.c: SecurityEvent="InvalidPassword",...,RemoteAddress="IPV4/UDP/203.0.113.5/5060",...
-- The From header, caller id, account, Call-ID and digest values are the client's. Fields before
-- the address end at the first separator Asterisk writes after them (so they cannot reach past the
-- real address), and everything after the address is parsed strictly to the end of the line.
local syslog = require 'lib.syslog'

local function upto(sep)    -- client text that cannot contain sep (a literal)
  return [=[(?:(?!]=] .. sep .. [=[).)*]=]
end

FILTER{ "asterisk";
  enabled = true;
  source = "asterisk";
  engine = "fail2ban";
  prefregex = [=[^(?:]=] .. syslog.head('asterisk') .. [=[|\s*(?:\[\]\s*)?)(?:NOTICE|WARNING|SECURITY|ERROR|VERBOSE)\[\d+\](?:\[C-[\da-fA-F]+\])?:? [\w/.-]+\.c(?::\d+)?(?: in \w+)?: <F-CONTENT>.+</F-CONTENT>$]=];
  failregex = {
    -- chan_sip registration
    [=[^Registration from ']=] .. upto([=[' failed for ']=]) .. [=[' failed for '<HOST>(?::\d+)?' - (?:Wrong password|No matching peer found|Username/auth name mismatch|Device does not match ACL|Peer is not supposed to register|ACL error \(permit/deny\)|Not a local domain)$]=],
    -- PJSIP (13+) requests
    [=[^Request (?:'[A-Z]+' )?from ']=] .. upto([=[' failed for ']=]) .. [=[' failed for '<HOST>(?::\d+)?' \(callid: [^\s']*\) - (?:No matching endpoint found(?: after \d+ tries in [\d.]+ ms)?|Not match Endpoint(?: Contact)? ACL|Failed to authenticate|Error to authenticate)$]=],
    -- calls to numbers that do not exist (toll-fraud probing)
    [=[^Call from ']=] .. upto([=[' \(]=]) .. [=[' \(<HOST>(?::\d+)?\) to extension '[^']*' rejected because extension not found in context '[^']*'\.$]=],
    -- AMI and IAX2
    [=[^(?:Host )?<HOST> (?:failed to authenticate as|tried to authenticate with nonexistent user|failed to pass IP ACL as) .+$]=],
    -- security events (res_security_log)
    [=[^SecurityEvent="(?:InvalidAccountID|FailedACL|InvalidPassword|ChallengeResponseFailed)",EventTV="[^"]*",Severity="[^"]*",Service="[^"]*",EventVersion="\d+",(?:Module="[^"]*",)?AccountID="<F-USER>]=] .. upto([=[",SessionID="]=]) .. [=[</F-USER>",SessionID="]=] .. upto([=[",(?:SessionTV|LocalAddress)="]=]) .. [=[",(?:SessionTV="[^"]*",)?LocalAddress="[^"]*",RemoteAddress="IPV[46]/(?:UDP|TCP|TLS|WS|WSS)/<ADDR>/\d+"(?:,Module="[^"]*")?(?:,ACLName="[^"]*")?(?:,Challenge="[^"]*")?(?:,ReceivedChallenge="[^"]*")?(?:,ReceivedHash="[^"]*")?(?:,Response="[^"]*")?(?:,ExpectedResponse="[^"]*")?$]=],
  };
}
