-- Windows jails (enabled on Windows). Each jail reads the native event-log filter and its NXLog
-- twin (the *-nxlog filters are disabled until you enable them for forwarded events). The bans go
-- to the firewall action: Windows Defender Firewall rules spylog-v4-NNNN / spylog-v6-NNNN.

local WINDOWS = PLATFORM == 'windows'
local HOUR = 3600

-- Failed Windows logons over the network (Security 4625: SMB, RDP with NLA, RDP without NLA),
-- Kerberos pre-authentication failures on domain controllers, SMB server auth failures.
JAIL{ "windows-logon";
  enabled = WINDOWS;
  filter = { "windows-logon", "windows-logon-nxlog", "windows-kerberos", "windows-smb", "windows-smb-nxlog" };
}

-- Remote Desktop: RdpCoreTS 140 (failed connection before logon), RD Gateway.
JAIL{ "windows-rdp";
  enabled = WINDOWS;
  filter = { "windows-rdp", "windows-rdp-nxlog", "windows-rdgateway", "windows-rdgateway-nxlog" };
}

-- SQL Server login failures (18456).
JAIL{ "windows-mssql";
  enabled = WINDOWS;
  filter = { "windows-mssql", "windows-mssql-nxlog" };
}

-- OpenSSH for Windows (event log, or its own log file).
JAIL{ "windows-openssh";
  enabled = WINDOWS;
  filter = { "windows-openssh", "windows-openssh-nxlog", "windows-openssh-file" };
}

-- IIS: repeated 401/403 on the web sites, OWA and RD Web logon failures.
JAIL{ "windows-iis";
  enabled = WINDOWS;
  filter = { "windows-iis-auth", "windows-owa", "windows-rdweb" };
  maxretry = 10;
}

-- IIS FTP 530 (login failed).
JAIL{ "windows-ftp";
  enabled = WINDOWS;
  filter = "windows-iis-ftp";
}

-- Exchange SMTP AUTH failures.
JAIL{ "windows-exchange-smtp";
  enabled = WINDOWS;
  filter = "windows-exchange-smtp";
  bantime = 6 * HOUR;
}
