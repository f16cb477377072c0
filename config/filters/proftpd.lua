-- ProFTPD login failures, through syslog or ProFTPD's own SystemLog file, 1.3.x:
--   proftpd[1234]: ftp.example.com (client.example.net[203.0.113.5]) - USER bob (Login failed): Incorrect password
--   proftpd[1234]: ftp.example.com (203.0.113.5[203.0.113.5]) - USER eve: no such user found from 203.0.113.5 [203.0.113.5] to 192.0.2.1:21
--   proftpd[1234]: ftp.example.com (203.0.113.5[203.0.113.5]) - SECURITY VIOLATION: Root login attempted
--   proftpd[1234]: ftp.example.com (203.0.113.5[203.0.113.5]) - Maximum login attempts (3) exceeded, connection refused
--   SystemLog: 2024-05-14 10:11:12,345 ftp proftpd[1234] ftp.example.com (client[203.0.113.5]): USER bob (Login failed): ...
-- The address is taken from the "(name[address])" ProFTPD writes before the message; the name is
-- the resolved host name (no spaces or brackets). Everything the client sent comes after it.
local syslog = require 'lib.syslog'

local pre = [=[^(?:]=] .. syslog.head('proftpd') .. [=[|\s*\S+ proftpd\[\d+\] )\S+ \([^\s\[\]]*\[<HOST>\]\)(?: -|:) ]=]

FILTER{ "proftpd";
  enabled = true;
  source = "proftpd";
  engine = "fail2ban";
  failregex = {
    pre .. [=[USER <F-USER>.*?</F-USER> \(Login failed\): .*$]=],
    pre .. [=[USER <F-USER>.*?</F-USER>: no such user found from .*$]=],
    pre .. [=[SECURITY VIOLATION: \S+ login attempted\.?$]=],
    pre .. [=[Maximum login attempts \(\d+\) exceeded, connection refused$]=],
  };
}
