-- Pure-FTPd login failures (syslog):
--   pure-ftpd: (?@203.0.113.5) [WARNING] Authentication failed for user [bob]
--   pure-ftpd[1234]: (?@client.example.net) [WARNING] Authentication failed for user [bob]
-- "(user@host)" is written by Pure-FTPd before the client's user name; before a login the user is
-- "?". The address is the part after the last '@' (host names and addresses have none).
local syslog = require 'lib.syslog'

FILTER{ "pure-ftpd";
  enabled = true;
  source = "syslog";
  engine = "fail2ban";
  failregex = {
    syslog.prefix([=[pure-ftpd]=]) .. [=[\(\S*@<HOST>\) \[WARNING\] Authentication failed for user \[<F-USER>.*</F-USER>\]$]=],
  };
}
