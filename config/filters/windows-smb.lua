-- SMB server authentication failures: Microsoft-Windows-SMBServer/Security event 551
-- ("SMB Session Authentication Failure"), Windows Server 2012 R2 and later. The address is the
-- "Client Name" (\\a.b.c.d) that comes before the user name the client chose; a client that gave
-- a NetBIOS name instead of an address is not matched (Security 4625 LogonType 3 covers SMB too).

local WINDOWS = PLATFORM == 'windows'

local smb = [=[SMB Session Authentication Failure\s+Client Name: \\\\<ADDR>\s+Client Address: \S*\s+User Name: <F-USER>.*?</F-USER>\s+Session ID: \S+\s+Status: ]=]

FILTER{ "windows-smb";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'Microsoft-Windows-SMBServer', 551};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = { '^' .. smb };
}

FILTER{ "windows-smb-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^EventID: 551;\s*]=] .. smb,
    [=[^\{.*?"EventID":551,.*?"SourceName":"Microsoft-Windows-SMBServer".*?"UserName":"<F-USER>(?:[^"\\]|\\.)*</F-USER>".*?"ClientName":"(?:\\){4}<ADDR>"[,}]]=],
  };
}
