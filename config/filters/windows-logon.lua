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

-- Domain controllers: Security 4771 "Kerberos pre-authentication failed" with failure code 0x18
-- (bad password; 0x12 locked/disabled, 0x25 clock skew are not counted). The client address is
-- often IPv4-mapped (::ffff:a.b.c.d: the address is a.b.c.d). The account name comes from the
-- client: the address is the last "Client Address" section, Windows' own fields follow it.
local kerberos = [=[Kerberos pre-authentication failed\.\s+Account Information:\s+Security ID:\s+[^\n]*?\s+Account Name:\s+<F-USER>.*?</F-USER>\s+Service Information:]=]
  .. [=[[\s\S]*\sClient Address:\s+<ADDR>\s+Client Port:\s+\d+\s+Additional Information:\s+Ticket Options:\s+\S+\s+Failure Code:\s+0x18\s(?![\s\S]*Client Address:)]=]

FILTER{ "windows-kerberos";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'Security', 4771};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = { '^' .. kerberos };
}
