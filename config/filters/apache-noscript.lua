-- Requests for scripts that do not exist (script/CGI scanners), Apache httpd error log, 2.2 and 2.4:
--   [Tue May 14 ...] [core:info] [pid 1234:tid 5678] [client 203.0.113.5:54321] AH00128: File does not exist: /var/www/html/shell.php
--   [Tue May 14 ...] [cgid:error] [pid 1234:tid 5678] [client 203.0.113.5:54321] AH01264: script not found or unable to stat: /usr/lib/cgi-bin/php
--   [Tue May 14 ...] [proxy_fcgi:error] [pid 1234:tid 5678] [client 203.0.113.5:54321] AH01071: Got error 'Primary script unknown'
-- Missing images, style sheets etc. do not count: only script extensions, CGI and PHP-FPM misses.
-- The client address is written before the path and the ", referer: ..." the client controls; the
-- path ends at the first ", referer: " so a referrer cannot supply the script extension.
local pre = [[^\s*\[\] \[(?:\w*:)?(?:error|warn|notice|info|crit|alert|emerg|debug)\] (?:\[pid \d+(?::tid \d+)?\] )?\[client <HOST>(?::\d+)?\] ]]
local script = [[\.(?i:php[3-8]?|phtml|phar|aspx?|ashx|asmx|jsp|jspa|do|action|cgi|pl|py|sh|exe|dll|cfm)]]

FILTER{ "apache-noscript";
  enabled = true;
  source = "apache-error";
  engine = "fail2ban";
  failregex = {
    pre .. [[(?:AH00128: )?File does not exist: (?:(?!, referer: ).)*]] .. script .. [[(?:, referer: .*)?$]],
    pre .. [[(?:AH0(?:1215|1264|2811): )?script (?:not found or unable to stat|'\S+' not found or unable to stat)(?:: .*)?$]],
    pre .. [[(?:AH01071: )?Got error 'Primary script unknown(?:\\n)?'(?:, referer: .*)?$]],
  };
}
