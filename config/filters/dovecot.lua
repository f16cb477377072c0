-- Dovecot IMAP/POP3/submission/ManageSieve authentication failures, Dovecot 2.2, 2.3 and 2.4,
-- through syslog/journal ("dovecot[pid]: imap-login: ...") or Dovecot's own log_path file
-- ("imap-login: Info: ..."):
--   imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.5, lip=192.0.2.1, TLS, session=<...>
--   pop3-login: Aborted login (auth failed, 3 attempts in 12 secs): user=<bob>, method=PLAIN, rip=..., lip=..., session=<...>
--   imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): user=<bob>, ...
-- and, with auth_verbose = yes, one line per attempt from the auth process:
--   auth: passwd-file(bob,203.0.113.5,<session>): Password mismatch
--   auth-worker(1234): pam(bob,203.0.113.5): pam_authenticate() failed: Authentication failure (password mismatch?)
-- User names are the client's. Everything after the address is written by Dovecot and parsed
-- strictly to the end of the line, so a user name such as 'x>, method=PLAIN, rip=198.51.100.9, ...'
-- is only ever part of the user name.
local syslog = require 'lib.syslog'

FILTER{ "dovecot";
  enabled = true;
  source = "mail";
  engine = "fail2ban";
  prefregex = [[^(?:]] .. syslog.head('dovecot') .. [[)?\s*<F-CONTENT>.+</F-CONTENT>$]];
  failregex = {
    [[^(?:imap|pop3|submission|managesieve|lmtp)-login: (?:(?:Info|Debug): )?(?:Disconnected|Aborted login|Login aborted)(?:: [\w ]+)? \(auth failed, \d+ attempts(?: in \d+ secs?)?\)(?: \(\w+\))?: (?:user=<<F-USER>.*?</F-USER>>, )?(?:method=[\w-]+, )?rip=<HOST>, lip=[\w.:]+(?:, mpid=\d+)?(?:, (?:TLS|secured)(?: handshaking)?(?:: [\w ]+)?)?(?:, session=<[\w+/=-]+>)?$]],
    [[^auth(?:-worker\(\d+\))?: (?:(?:Info|Debug): )?(?:conn unix:[\w/-]+ \(pid=\d+,uid=\d+\): auth-worker<\d+>: )?[\w-]+\(<F-USER>.*?</F-USER>,<HOST>(?:,<[\w+/=-]+>)?\): (?:Password mismatch|unknown user|pam_authenticate\(\) failed: (?:Authentication failure|User not known to the underlying authentication module)(?: \([\w ?]+\))?)(?: \(SHA1 of given password: [0-9a-f]+\))?$]],
  };
}
