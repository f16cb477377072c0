-- SQL Server failed logins: Application event 18456 (provider MSSQLSERVER, or MSSQL$<instance>
-- for a named instance):
--   "Login failed for user 'sa'. Reason: Password did not match that for the login provided. [CLIENT: 203.0.113.23]"
-- The client address is the last bracket of the message ("[CLIENTE: …]" on Spanish builds);
-- "<local machine>" (a local client) never matches. Not a failure: "Reason: Failed to open the
-- explicitly specified database" (the credentials were right). The user name is the client's:
-- the greedy capture takes the LAST "'. Reason:", so a user name cannot pick the reason.
-- SQL Server must log failed logins (Server properties → Security → Login auditing).

local WINDOWS = PLATFORM == 'windows'

local login = [=[Login failed for user '<F-USER>.*</F-USER>'\.\s*Reason: (?!Failed to open the explicitly specified database)[^\n]*?\s*\[CLIENTE?: <ADDR>\]\s*$]=]

FILTER{ "windows-mssql";
  enabled = WINDOWS;
  source = "windows-events";
  events = {{'MSSQLSERVER', 18456}, {'MSSQL$*', 18456}};
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = { '^' .. login };
}

FILTER{ "windows-mssql-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^EventID: 18456;\s*]=] .. login,
    [=[^\{.*?"EventID":18456,.*?"Message":"Login failed for user '<F-USER>(?:[^"\\]|\\.)*</F-USER>'\.\s*Reason: (?!Failed to open the explicitly specified database)(?:[^"\\]|\\.)*?\s*\[CLIENTE?: <ADDR>\]\s*"[,}]]=],
  };
}
