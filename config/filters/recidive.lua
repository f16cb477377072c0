-- Repeat offenders: reads spylog's own log and counts the bans of every other jail.
--   2024-05-14 10:11:12.345 spylog[1234]: NOTICE [sshd] Ban 203.0.113.5
-- Bans issued by the recidive jail itself, unbans and every other spylog message are ignored.
-- Also accepts the same message through syslog/the journal ("host spylog[1234]: NOTICE ...").
-- The line is anchored from its start, so a log line that spylog quotes inside one of its own
-- messages can never be taken for a ban.
local syslog = require 'lib.syslog'

FILTER{ "recidive";
  enabled = true;
  source = "spylog";
  engine = "fail2ban";
  failregex = {
    syslog.prefix('spylog') .. [=[NOTICE \[(?!recidive\])[^\]\s]+\] Ban <ADDR>$]=],
  };
}
