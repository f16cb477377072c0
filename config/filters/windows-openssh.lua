-- OpenSSH for Windows. sshd writes its syslog messages unchanged, either
--   windows-openssh         into the OpenSSH/Operational channel (event 4; message "sshd: <text>")
--   windows-openssh-nxlog   the same forwarded by NXLog ("EventID: 4; sshd: <text>")
--   windows-openssh-file    or, with "SyslogFacility LOCAL0" in sshd_config, into
--                           %ProgramData%\ssh\logs\sshd.log: "<pid> <date> <time.ms> <text>"
-- User names come from the client: every regex with a user name before the address ends in a
-- fixed, server-written tail anchored with '$'.

local WINDOWS = PLATFORM == 'windows'

local failregex = {
  [=[^Failed (?:password|keyboard-interactive(?:/pam)?|publickey|none) for (?:invalid user )?<F-USER>.*?</F-USER> from <ADDR> port \d+(?: ssh\d)?(?:: [\w-]+ [\w:+/=-]+)?$]=],
  [=[^Invalid user <F-USER>.*?</F-USER> from <ADDR>(?: port \d+)?$]=],
  [=[^(?:Connection (?:closed|reset) by|Disconnected from) (?:authenticating|invalid) user <F-USER>.*?</F-USER> <ADDR> port \d+ \[preauth\]$]=],
  [=[^maximum authentication attempts exceeded for (?:invalid user )?<F-USER>.*?</F-USER> from <ADDR> port \d+ ssh\d(?: \[preauth\])?$]=],
}

FILTER{ "windows-openssh";
  enabled = WINDOWS;
  source = "windows-events";
  events = {'OpenSSH', {3, 4}};
  exclude = WHITE_IP;
  engine = "fail2ban";
  prefregex = [=[^sshd(?:-session|-auth)?: <F-CONTENT>.+</F-CONTENT>$]=];
  failregex = failregex;
}

FILTER{ "windows-openssh-nxlog";
  enabled = false;
  source = "nxlog";
  exclude = WHITE_IP;
  engine = "fail2ban";
  prefregex = [=[^EventID: [34];\s*sshd(?:-session|-auth)?: <F-CONTENT>.+</F-CONTENT>$]=];
  failregex = failregex;
}

FILTER{ "windows-openssh-file";
  enabled = WINDOWS;
  source = "auth";
  exclude = WHITE_IP;
  engine = "fail2ban";
  -- the date is cut out by the date detector: "<pid>  <text>" is left
  prefregex = [=[^\d+\s+<F-CONTENT>.+</F-CONTENT>$]=];
  failregex = failregex;
}
