-- spylog's packaged default configuration, in lua-spylog's format.
--
-- Copy this directory to /etc/spylog (Linux) or %ProgramData%\spylog (Windows) and edit it there:
--   spylog.lua     global settings (this file)
--   sources/       where log lines come from (SOURCE{})
--   filters/       what a failure looks like (FILTER{}); shared helpers live in lib/
--   jails/         how many failures lead to a ban (JAIL{})
--   actions/       what a ban does (ACTION{})
-- PLATFORM is 'windows', 'linux', … (a spylog extension) for per-platform paths.

-- Never banned, whatever the filters find.
WHITE_IP{
  '127.0.0.1/8',
  '::1',
}

-- spylog's own log. Its Ban lines feed the recidive jail (sources/default.lua reads this file).
LOG{
  level = 'info';
  file = {
    log_dir  = PLATFORM == 'windows' and [[C:\ProgramData\spylog\logs]] or '/var/log/spylog';
    log_name = 'spylog.log';
  };
}

local MINUTE, HOUR = 60, 3600

-- Defaults of every jail (jails/): 5 failures within 10 minutes ban for an hour.
JAIL{
  purge_interval = 15; -- minutes between purges of idle counters
  default = {
    findtime = 10 * MINUTE;
    maxretry = 5;
    bantime  = HOUR;
    action   = { "firewall" };
  };
}
