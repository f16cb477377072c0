-- vsftpd login failures, from its own log (vsftpd_log_file, "[pid N]" form) or through syslog
-- (syslog_enable=YES):
--   Tue May 14 10:11:12 2024 [pid 1234] [bob] FAIL LOGIN: Client "203.0.113.5"
--   May 14 10:11:12 ftp vsftpd[1234]: [bob] FAIL LOGIN: Client "::ffff:203.0.113.5"
-- The user name in brackets is the client's and may contain spaces, ']' and '"'; the tail after it
-- is vsftpd's own and is anchored, so only the address vsftpd wrote last can match.
local syslog = require 'lib.syslog'

FILTER{ "vsftpd";
  enabled = true;
  source = "vsftpd";
  engine = "fail2ban";
  prefregex = [=[^(?:]=] .. syslog.head('vsftpd') .. [=[)?\s*(?:\[pid \d+\] )?<F-CONTENT>.+</F-CONTENT>$]=];
  failregex = {
    [=[^\[<F-USER>.*?</F-USER>\] FAIL LOGIN: Client "<HOST>"$]=],
  };
}
