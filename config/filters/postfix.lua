-- Postfix SMTP AUTH (SASL) failures, logged by smtpd of any master.cf service (smtp, submission,
-- smtps) and any instance (postfix-out/...), Postfix 2.x and 3.x:
--   postfix/submission/smtpd[1234]: warning: unknown[203.0.113.5]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
--   postfix/smtpd[1234]: warning: mail.example.net[203.0.113.5]:51234: SASL PLAIN authentication failed: authentication failure, sasl_username=bob@example.com
-- "Connection lost to authentication server" is a local problem (Dovecot/saslauthd down), not the
-- client's. The client name[address] is written by Postfix before anything the client sent (the
-- SASL user name comes last), so the address cannot be forged.
local syslog = require 'lib.syslog'

FILTER{ "postfix";
  enabled = true;
  source = "mail";
  engine = "fail2ban";
  prefregex = syslog.prefix([[postfix(?:-[\w.-]+)?/(?:[\w.-]+/)?smtpd]]) .. [[<F-CONTENT>.+</F-CONTENT>$]];
  failregex = {
    [=[^warning: [^\s\[\]]*\[<HOST>\](?::\d+)?: SASL [\w-]+ authentication failed: (?!Connection lost to authentication server).*?(?:, sasl_username=<F-USER>.*</F-USER>)?$]=],
  };
}
