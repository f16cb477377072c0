-- nginx basic authentication (ngx_http_auth_basic_module) failures in the error log:
--   ... [error] 1234#1234: *5 user "bob": password mismatch, client: 203.0.113.5, server: ..., request: "...", host: "..."
--   ... [error] 1234#1234: *5 user "eve" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.5, ...
-- ("no user/password was provided" is logged at info level for every first browser request and is
-- not a failure.)
--
-- The user name is the client's and nginx logs it unescaped, so it may contain '"' and a complete
-- fake '": password mismatch, client: <addr>, ...' text; the request line and the Host header (after
-- the address) are the client's too. Two rules keep the address nginx wrote:
--  * the user name ends at the FIRST '": password mismatch, client: ' / '" was not found in "'
--    (it cannot contain either), so a forged client after the real one is never reached;
--  * everything after the address is parsed strictly up to the end of the line: server name
--    (no spaces), then quoted request, host and referrer without inner quotes. A forged client
--    inside the user name is followed by the real '": password mismatch, client: ...' text,
--    which that tail cannot absorb, so such a line does not match at all.
-- (A request line or Host header containing a raw '"' makes the line unmatchable: not counted.)
-- the user name: anything up to the first separator nginx writes after it
local user = [[<F-USER>(?:(?!": password mismatch, client: |" was not found in ").)*</F-USER>]]

local function errlog(msg)
  return [[^\s*\[(?:error|warn|notice|info|crit|alert|emerg)\] \d+#\d+: \*\d+ ]] .. msg ..
    [[, client: <HOST>, server: \S*, request: "[^"]*"(?:, host: "[^"]*")?(?:, referrer: "[^"]*")?$]]
end

FILTER{ "nginx-http-auth";
  enabled = true;
  source = "nginx-error";
  engine = "fail2ban";
  failregex = {
    errlog([[user "]] .. user .. [[": password mismatch]]),
    errlog([[user "]] .. user .. [[" was not found in "[^"]*"]]),
  };
}
