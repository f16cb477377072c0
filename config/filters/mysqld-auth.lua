-- MySQL / MariaDB / Percona access denied (error log, or the journal/syslog):
--   MySQL 5.7/8.x:  2024-05-14T08:11:12.123456Z 15 [Note] [MY-010926] [Server] Access denied for user 'root'@'203.0.113.5' (using password: YES)
--   MySQL 5.5/5.6:  140514 10:11:12 [Warning] Access denied for user 'root'@'203.0.113.5' (using password: YES)
--   MariaDB:        2024-05-14 10:11:12 15 [Warning] Access denied for user 'root'@'203.0.113.5' (using password: YES)
--   journal:        May 14 10:11:12 db mariadbd[812]: 2024-05-14 10:11:12 15 [Warning] Access denied for ...
-- MySQL 5.7+ needs log_error_verbosity = 3, MariaDB log_warnings >= 2 to log these.
-- The quoted user name is the client's and may contain quotes; the text after the address is the
-- server's own and anchored, so only the address the server wrote last can match.
-- Local clients (localhost, 127.0.0.1, ::1) are not reported.
local syslog = require 'lib.syslog'

FILTER{ "mysqld-auth";
  enabled = true;
  source = "mysql";
  engine = "fail2ban";
  prefregex = [=[^(?:]=] .. syslog.head([=[(?:mysqld|mariadbd|mysqld-debug|mysqld_safe)]=])
    .. [=[(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)? |\d{6} ?\d?\d:\d\d:\d\d )?)?\s*<F-CONTENT>.+</F-CONTENT>$]=];
  failregex = {
    [=[^(?:\d+ )?\[(?:Note|Warning|Error)\] (?:\[MY-\d+\] \[\w+\] )?Access denied for user '<F-USER>.*?</F-USER>'@'(?!(?:localhost|127\.0\.0\.1|::1)')<HOST>' \(using password: (?:YES|NO)\)$]=],
  };
}
