-- How many failures lead to a ban. Every jail uses the defaults of spylog.lua (JAIL{ default })
-- unless it sets its own findtime / maxretry / bantime / action. A jail whose log does not exist
-- on this machine costs nothing: its file source waits for the file.
-- To switch a jail off: enabled = false.

local HOUR, DAY = 3600, 86400
local WEEK = 7 * DAY

-- Remote logins.
JAIL{ "sshd";            filter = "sshd" }

-- Mail.
JAIL{ "postfix";         filter = "postfix" }
JAIL{ "dovecot";         filter = "dovecot" }
JAIL{ "exim";            filter = "exim" }

-- Web servers.
JAIL{ "nginx-http-auth"; filter = "nginx-http-auth" }
JAIL{ "nginx-limit-req"; filter = "nginx-limit-req"; maxretry = 10 }
JAIL{ "nginx-botsearch"; filter = "nginx-botsearch"; maxretry = 2 }
JAIL{ "apache-auth";     filter = "apache-auth" }
JAIL{ "apache-badbots";  filter = "apache-badbots"; maxretry = 1; bantime = 2 * DAY }
JAIL{ "apache-noscript"; filter = "apache-noscript" }

-- FTP.
JAIL{ "vsftpd";          filter = "vsftpd" }
JAIL{ "proftpd";         filter = "proftpd" }
JAIL{ "pure-ftpd";       filter = "pure-ftpd" }

-- Databases.
JAIL{ "mysqld-auth";     filter = "mysqld-auth" }

-- VoIP.
JAIL{ "freeswitch";      filter = "freeswitch" }
JAIL{ "asterisk";        filter = "asterisk" }

-- Repeat offenders: five bans from any jail within a day mean a week away.
JAIL{ "recidive";        filter = "recidive"; findtime = DAY; maxretry = 5; bantime = WEEK }
