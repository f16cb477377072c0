-- Remote Desktop failures that carry the client's address when Security 4625 does not (NLA with
-- NTLM on older servers logs 4625 without an address):
--   windows-rdp          RdpCoreTS/Operational 140: "A connection from the client computer with an
--                        IP address of … failed because the user name or password is not correct."
--                        (fires for unknown users; not always for existing ones)
--   windows-rdgateway    RD Gateway (TerminalServices-Gateway/Operational 312): a user failed to
--                        authenticate; user name first (client text), the address after it
-- and their NXLog forms (source `nxlog`: lua-spylog's "EventID: N; <message>" or to_json()).
-- English message texts.

local WINDOWS = PLATFORM == 'windows'

local rdp = [=[A connection from the client computer with an IP address of <ADDR> failed because the user name or password is not correct\.$]=]
-- The user name is the client's: the greedy capture makes the address the LAST 'on client
-- computer "…"', which the server's own text follows up to the end.
local gateway = [=[The user "<F-USER>.*</F-USER>", on client computer "<ADDR>", failed to authenticate to the RD Gateway server\. The authentication method used was: "[\w ]*" and connection protocol used: "[\w ]*"\. The following error occurred: "\d+"\.$]=]

FILTER{ "windows-rdp";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'Microsoft-Windows-RemoteDesktopServices-RdpCoreTS', 140};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = { '^' .. rdp };
}

FILTER{ "windows-rdp-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^EventID: 140;\s*]=] .. rdp,
    [=[^\{.*?"EventID":140,.*?"SourceName":"Microsoft-Windows-RemoteDesktopServices-RdpCoreTS".*?"IPString":"<ADDR>"[,}]]=],
  };
}

FILTER{ "windows-rdgateway";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'Microsoft-Windows-TerminalServices-Gateway', 312};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = { '^' .. gateway };
}

FILTER{ "windows-rdgateway-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^EventID: 312;\s*]=] .. gateway,
    [=[^\{.*?"EventID":312,.*?"SourceName":"Microsoft-Windows-TerminalServices-Gateway".*?"Username":"<F-USER>(?:[^"\\]|\\.)*</F-USER>".*?"IpAddress":"<ADDR>"[,}]]=],
  };
}
