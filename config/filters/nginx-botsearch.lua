-- Vulnerability scanners in the nginx access log (combined format): 404s for well-known probe
-- targets (WordPress, phpMyAdmin, leaked dot-files, CGI/router exploits, Java consoles, ...) and
-- 400s for non-HTTP garbage (TLS handshakes and binary payloads sent to a plain HTTP port).
--   203.0.113.5 - - [14/May/2024:10:11:12 +0200] "GET /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0 ..."
-- The client address is the first field, so nothing the client sends can move it. nginx escapes
-- '"' inside logged variables (\x22), so the request field cannot be closed early either.
-- The date is taken only from the bracketed field after the address: without this, a date written
-- into a URL could be picked up by the default date templates.
local probe = [[(?i:wp-login\.php|xmlrpc\.php|wp-admin|wp-includes|wp-config\.php(?:\.\w+)?|wordpress|wp|]]
  .. [[phpmyadmin[\w.-]*|pma|myadmin|mysqladmin|sqladmin|dbadmin|adminer[\w.-]*\.php|]]
  .. [[\.env(?:\.\w+)?|\.git|\.svn|\.hg|\.aws|\.ssh|\.htpasswd|\.DS_Store|]]
  .. [[cgi-bin|boaform|HNAP1|setup\.cgi|GponForm|vendor/phpunit|phpunit|eval-stdin\.php|]]
  .. [[shell\.php|cmd\.php|phpinfo\.php|info\.php|solr|actuator|manager/html|jmx-console|]]
  .. [[invoker|remote/login|owa/auth|druid|telescope|_ignition|\.vscode|sftp-config\.json)]]

local head = [[^<HOST> \S+ \S+ \[\] "]]

FILTER{ "nginx-botsearch";
  enabled = true;
  source = "nginx-access";
  engine = "fail2ban";
  failregex = {
    head .. [[(?:GET|POST|HEAD|PUT|OPTIONS|PROPFIND) (?:https?://[^/\s"]+)?(?:/[^/\s?"]+)*/]] .. probe
      .. [[(?:[/?;]\S*)? HTTP/[\d.]+" 404 (?:\d+|-)(?: .*)?$]],
    head .. [[(?!-")(?:[^"\\]|\\.)+" 400 (?:\d+|-)(?: .*)?$]],
  };
  datepattern = [=[^[^\[]*\[(%d/%b/%Y:%H:%M:%S %z)\]]=];
}
