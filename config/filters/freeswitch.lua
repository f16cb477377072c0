-- FreeSWITCH (mod_sofia) SIP registration/call authentication failures, challenges and ACL
-- rejections, in freeswitch.log (1.6 .. 1.10, with or without the 1.10 idle-CPU column or a
-- session UUID) or through syslog:
--   2024-05-14 10:11:12.123456 [WARNING] sofia_reg.c:3077 SIP auth failure (REGISTER) on sofia profile 'internal' for [1000@example.com] from ip 203.0.113.5
--   2024-05-14 10:11:12.123456 97.83% [DEBUG] sofia_reg.c:3020 SIP auth challenge (INVITE) on sofia profile 'external' for [1000@example.com] from ip 203.0.113.5
--   2024-05-14 10:11:12.123456 [WARNING] sofia_reg.c:1750 IP 203.0.113.5 Rejected by acl "domains"
--   2024-05-14 10:11:12.123456 [WARNING] sofia_reg.c:3170 Can't find user [1000@example.com] from 203.0.113.5
-- Challenges are part of every normal registration (the first REGISTER has no credentials), so a
-- jail using this filter needs a maxretry that allows for them. ACL rejections that fall back to
-- digest authentication are not counted (the following auth failure is).
-- The SIP user and domain are the client's: matched lazily, with the server-written tail
-- "] from ip <address>" anchored at the end of the line.
local syslog = require 'lib.syslog'

FILTER{ "freeswitch";
  enabled = true;
  source = "freeswitch";
  engine = "fail2ban";
  prefregex = [=[^(?:]=] .. syslog.head('freeswitch') .. [=[|\s*(?:[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}\s+)?(?:\d+(?:\.\d+)?% )?)\s*(?:\[(?:WARNING|NOTICE|INFO|DEBUG|ERR|CRIT|ALERT|CONSOLE)\] )?[\w.]+\.c:\d+ <F-CONTENT>.+</F-CONTENT>$]=];
  failregex = {
    [=[^SIP auth failure \([A-Z]+\) on sofia profile '[^']*' for \[<F-USER>.*?</F-USER>@.*?\] from ip <HOST>$]=],
    [=[^SIP auth challenge \([A-Z]+\) on sofia profile '[^']*' for \[<F-USER>.*?</F-USER>@.*?\] from ip <HOST>$]=],
    [=[^IP <HOST> Rejected by (?:register )?acl "[^"]*"$]=],
    [=[^Can't find user \[<F-USER>.*?</F-USER>@.*?\] from <HOST>$]=],
  };
}
