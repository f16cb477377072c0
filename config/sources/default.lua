-- The log sources the packaged filters read. A file source waits for its file to appear, so
-- sources of services a machine does not run cost nothing. Paths are the services' defaults;
-- adjust them to your installation.

local windows = PLATFORM == 'windows'
local programdata = [[C:\ProgramData]]

local function file(linux, win)
  return 'file:' .. (windows and win or linux)
end

-- Authentication log (sshd, proftpd's auth lines). RHEL-like systems: /var/log/secure.
-- Windows: OpenSSH for Windows with `SyslogFacility LOCAL0` writes its own log file.
SOURCE{ "auth",          file('/var/log/auth.log', programdata .. [[\ssh\logs\sshd.log]]) }
-- General syslog (pure-ftpd logs through it).
SOURCE{ "syslog",        file('/var/log/syslog', programdata .. [[\spylog\logs\syslog.log]]) }
-- Mail: postfix and dovecot.
SOURCE{ "mail",          file('/var/log/mail.log', programdata .. [[\spylog\logs\mail.log]]) }
SOURCE{ "exim",          file('/var/log/exim4/mainlog', programdata .. [[\spylog\logs\exim.log]]) }
-- Web servers.
SOURCE{ "nginx-access",  file('/var/log/nginx/access.log', [[C:\nginx\logs\access.log]]) }
SOURCE{ "nginx-error",   file('/var/log/nginx/error.log', [[C:\nginx\logs\error.log]]) }
SOURCE{ "apache-access", file('/var/log/apache2/access.log', [[C:\Apache24\logs\access.log]]) }
SOURCE{ "apache-error",  file('/var/log/apache2/error.log', [[C:\Apache24\logs\error.log]]) }
-- FTP servers.
SOURCE{ "vsftpd",        file('/var/log/vsftpd.log', programdata .. [[\spylog\logs\vsftpd.log]]) }
SOURCE{ "proftpd",       file('/var/log/proftpd/proftpd.log', programdata .. [[\spylog\logs\proftpd.log]]) }
-- Databases.
SOURCE{ "mysql",         file('/var/log/mysql/error.log', programdata .. [[\MySQL\MySQL Server 8.0\Data\mysqld.err]]) }
-- VoIP. FreeSWITCH can also be read live over its event socket:
--   SOURCE{ "freeswitch", "esl:ClueCon@127.0.0.1:8021", level = 'WARNING' }
SOURCE{ "freeswitch",    file('/var/log/freeswitch/freeswitch.log', [[C:\Program Files\FreeSWITCH\log\freeswitch.log]]) }
SOURCE{ "asterisk",      file('/var/log/asterisk/messages', programdata .. [[\spylog\logs\asterisk.log]]) }
-- spylog's own log: the recidive filter counts repeated bans.
SOURCE{ "spylog",        file('/var/log/spylog/spylog.log', programdata .. [[\spylog\logs\spylog.log]]) }
