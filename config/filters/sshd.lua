-- OpenSSH server: failed authentication, invalid/refused users, pre-authentication disconnects of
-- authenticating users, too many authentication failures, connections dropped at MaxStartups or by
-- PerSourcePenalties. OpenSSH 7.x, 8.x, 9.x; since 9.8 sessions log as "sshd-session[pid]" (10.x may
-- also show "sshd-auth"), the listener keeps "sshd[pid]".
--
-- User names are chosen by the client and may contain spaces, so they are matched lazily and every
-- regex that has a user name before the address ends in a fixed, server-written tail anchored with
-- '$': text such as "from 198.51.100.9 port 22" inside a user name can never be taken for the address.
local syslog = require 'lib.syslog'

FILTER{ "sshd";
  enabled = true;
  source = "auth";
  engine = "fail2ban";
  prefregex = syslog.prefix([[sshd(?:-session|-auth)?]]) .. [[(?:(?:error|fatal): )?<F-CONTENT>.+</F-CONTENT>$]];
  failregex = {
    -- Failed password / keyboard-interactive[/pam] / publickey (with key type + fingerprint) / hostbased / none
    [[^Failed (?:password|keyboard-interactive(?:/pam)?|publickey|hostbased|gssapi-with-mic|none) for (?:invalid user )?<F-USER>.*?</F-USER> from <HOST> port \d+(?: ssh\d)?(?:: [\w-]+ [\w:+/=-]+)?$]],
    -- Invalid user (7.4: no port; 7.5+: with port)
    [[^Invalid user <F-USER>.*?</F-USER> from <HOST>(?: port \d+)?$]],
    -- AllowUsers / DenyUsers / AllowGroups / DenyGroups / missing shell (existing accounts only)
    [[^User <F-USER>\S+</F-USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups|shell \S+ (?:does not exist|is not executable))$]],
    -- PermitRootLogin no / prohibit-password
    [[^ROOT LOGIN REFUSED FROM <HOST>(?: port \d+)?$]],
    -- PAM (Linux "Authentication failure", BSD "authentication error", unknown users)
    [[^PAM: (?:Authentication failure|authentication error|User not known to the underlying authentication module) for (?:(?:illegal|invalid) user )?<F-USER>.*?</F-USER> from <HOST>$]],
    -- pre-authentication disconnects of users that tried to authenticate (8.x+)
    [[^(?:Connection (?:closed|reset) by|Disconnected from) (?:authenticating|invalid) user <F-USER>.*?</F-USER> <HOST> port \d+ \[preauth\]$]],
    -- MaxAuthTries reached
    [[^maximum authentication attempts exceeded for (?:invalid user )?<F-USER>.*?</F-USER> from <HOST> port \d+ ssh\d(?: \[preauth\])?$]],
    [[^Disconnecting (?:authenticating|invalid) user <F-USER>.*?</F-USER> <HOST> port \d+: Too many authentication failures(?: \[preauth\])?$]],
    -- MaxStartups (8.2+) and PerSourcePenalties (9.8+), logged by the listener
    [[^drop connection #\d+ from \[<ADDR>\]:\d+ on \[[\w.:%]+\]:\d+ (?:past MaxStartups|penalty: [\w ]+)$]],
  };
}
