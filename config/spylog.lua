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

LOG{
  level = 'info';
}
