-- Windows failed logons: Security event 4625 ("An account failed to log on"), for network logons
-- (LogonType 3: SMB, and RDP with NLA, which authenticates before the session) and
-- RemoteInteractive logons (LogonType 10: RDP without NLA).
--
-- Three forms:
--   windows-logon         the native event-log source: the record text is the rendered message
--                         (English Windows; several lines, tab-indented)
--   windows-logon-nxlog   NXLog forwarding to the `nxlog` UDP source, either lua-spylog's format
--                         ($raw_event = "EventID: " + $EventID + "; " + $Message) or to_json()
--
-- Never banned: a 4625 without an address ("Source Network Address: -", IpAddress "-"; NTLM on
-- Server 2012 and older, Exchange/OWA through its own process). Only literal addresses are taken
-- (never the Workstation Name, which the client chooses). The account and workstation names come
-- from the client, so the address is the LAST "Source Network Address" of the message (none may
-- follow it: a forged section before a real "-" finds nothing), followed by the fields Windows
-- itself writes (Source Port, Detailed Authentication Information).
-- Prerequisite: auditing of failed logons (auditpol /set /subcategory:"Logon" /failure:enable).

local WINDOWS = PLATFORM == 'windows'

local message = [[An account failed to log on\.\s+Subject:[\s\S]*?\sLogon Type:\s+(?:3|10)\s+]]
  .. [[Account For Which Logon Failed:\s+Security ID:\s+[^\n]*?\s+Account Name:\s+<F-USER>.*?</F-USER>\s+Account Domain:]]
  .. [=[[\s\S]*\sSource Network Address:\s+<ADDR>\s+Source Port:\s+[\d-]+\s+Detailed Authentication Information:(?![\s\S]*Source Network Address:)]=]

FILTER{ "windows-logon";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'Security', 4625};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    '^' .. message,
  };
}

-- NXLog (im_msvistalog, Query for Security 4625) → om_udp 127.0.0.1:614. JSON keys are matched
-- as "Key":"…: JSON escapes every quote inside a value (\"), so that sequence only occurs where a
-- key really is, never inside a user name or the message.
FILTER{ "windows-logon-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [[^EventID: 4625;\s*]] .. message,
    [=[^\{.*?"EventID":4625,.*?"TargetUserName":"<F-USER>(?:[^"\\]|\\.)*?</F-USER>".*?"LogonType":"(?:3|10)".*?"IpAddress":"<ADDR>"[,}]]=],
  };
}
