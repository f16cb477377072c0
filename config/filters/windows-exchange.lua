-- Exchange Server SMTP AUTH failures, from the front-end SMTP receive protocol log (CSV:
-- date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context).
-- The failure line says "Inbound AUTH <mechanism> failed because of LogonDenied"; the remote
-- endpoint is "address:port" ("[v6]:port"). Protocol logging must be on for the receive connector
-- (Set-ReceiveConnector … -ProtocolLoggingLevel Verbose). OWA/EWS/ActiveSync failures are in the
-- IIS log of the Exchange server: see windows-iis.lua (windows-owa, windows-iis-auth).

local WINDOWS = PLATFORM == 'windows'

FILTER{ "windows-exchange-smtp";
  enabled = WINDOWS;
  source = "exchange-smtp-receive";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^,[^,"]*,\w+,\d+,[^,]*,<ADDR>:\d+,\*,,Inbound AUTH [\w-]+ failed because of LogonDenied$]=],
  };
}
