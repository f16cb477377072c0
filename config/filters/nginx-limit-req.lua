-- nginx request rate limiting (ngx_http_limit_req_module) rejections in the error log:
--   ... [error] 1234#1234: *99 limiting requests, excess: 20.340 by zone "api", client: 203.0.113.5, server: ..., request: "...", host: "..."
-- The level follows limit_req_log_level (error by default; warn/notice/info possible). Delayed
-- requests ("delaying request", logged one level lower) and dry runs ("limiting requests, dry run")
-- are not rejections and do not match.
-- Nothing the client sends is logged before the address, so the tail can be loose.
FILTER{ "nginx-limit-req";
  enabled = true;
  source = "nginx-error";
  engine = "fail2ban";
  failregex = {
    [[^\s*\[(?:error|warn|notice|info)\] \d+#\d+: \*\d+ limiting requests, excess: [\d.]+ by zone "[^"]*", client: <HOST>(?:, server: \S*(?:, request: ".*)?)?$]],
  };
}
