-- Apache httpd authentication failures in the error log (mod_auth_basic, mod_auth_digest,
-- mod_authn_file, mod_authz_core), Apache 2.2 and 2.4:
--   [Tue May 14 10:11:12.123456 2024] [auth_basic:error] [pid 1234:tid 5678] [client 203.0.113.5:54321] AH01618: user bob not found: /private/
--   [Tue May 14 10:11:12 2024] [error] [client 203.0.113.5] user bob: authentication failure for "/private/": Password Mismatch
-- The client address comes before anything the client sent (user name, URI, ", referer: ..."), at a
-- fixed place in the prefix, so text in those fields can never be taken for it.
local pre = [[^\s*\[\] \[(?:\w*:)?(?:error|warn|notice|info|crit|alert|emerg|debug)\] (?:\[pid \d+(?::tid \d+)?\] )?\[client <HOST>(?::\d+)?\] ]]

FILTER{ "apache-auth";
  enabled = true;
  source = "apache-error";
  engine = "fail2ban";
  failregex = {
    -- basic: wrong password (AH01617) / unknown user (AH01618)
    pre .. [[(?:AH01617: )?user <F-USER>.*?</F-USER>: authentication failure for ".*": Password Mismatch(?:, referer: .*)?$]],
    pre .. [[(?:AH01618: )?user <F-USER>.*?</F-USER> not found: .*$]],
    -- digest: unknown user (AH01790) / wrong password (AH01792)
    pre .. [[(?:AH01790: )?(?:Digest: )?user `<F-USER>.*?</F-USER>' in realm `.*' not found: .*$]],
    pre .. [[(?:AH01792: )?(?:Digest: )?user <F-USER>.*?</F-USER>: password mismatch: .*$]],
    -- Basic credentials sent to a Digest area or the reverse (AH01614)
    pre .. [[(?:AH01614: )?client used wrong authentication scheme: .*$]],
    -- authenticated, but not authorised for the area (AH01631)
    pre .. [[(?:AH01631: )?user <F-USER>.*?</F-USER>: authorization failure for ".*": .*$]],
  };
}
