-- IIS text logs (W3C format). IIS writes its times in UTC and buffers its log writes (lines appear
-- late; `netsh http flush logbuffer` flushes). These regexes expect IIS's default field list:
--   web: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
--   ftp: date time c-ip cs-username s-ip s-port cs-method cs-uri-stem sc-status sc-win32-status sc-substatus x-session x-fullpath
-- IIS writes no spaces inside fields ('+' instead), so fields are \S+.
--   windows-iis-auth  401 (except 401.2, the authentication challenge every client gets first) and
--                     403 answers: a jail counts floods of them
--   windows-owa       Outlook Web App forms login failure: the redirect to logon.aspx with reason=2
--   windows-rdweb     RD Web Access login failure: POST to login.aspx answered 200 (success is 302)
--   windows-iis-ftp   IIS FTP failed login: "PASS *** 530"

local WINDOWS = PLATFORM == 'windows'

FILTER{ "windows-iis-auth";
  enabled = WINDOWS;
  source = "iis-w3svc1";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^\s*\S+ [A-Z]+ \S+ \S+ \d+ <F-USER>\S+</F-USER> <ADDR> \S+ \S+ (?:401 (?!2 )\d+|403 \d+) \d+ \d+$]=],
  };
}

FILTER{ "windows-owa";
  enabled = WINDOWS;
  source = "iis-w3svc1";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^\s*\S+ GET /owa/auth/logon\.aspx (?:\S*&)?reason=2(?:&\S*)? \d+ \S+ <ADDR> \S+ \S+ \d+ \d+ \d+ \d+$]=],
  };
}

FILTER{ "windows-rdweb";
  enabled = WINDOWS;
  source = "iis-w3svc1";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^\s*\S+ POST /RDWeb/Pages/[\w-]+/login\.aspx \S+ \d+ \S+ <ADDR> \S+ \S+ 200 \d+ \d+ \d+$]=],
  };
}

FILTER{ "windows-iis-ftp";
  enabled = WINDOWS;
  source = "iis-ftpsvc";
  exclude = WHITE_IP;
  engine = "fail2ban";
  failregex = {
    [=[^\s*<ADDR> \S+ \S+ \d+ PASS \S+ 530 \d+ \d+ \S+ \S+$]=],
  };
}
