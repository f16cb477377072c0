-- Exim 4 main log (mainlog / exim_mainlog, Debian and Red Hat layouts):
--   2024-05-14 10:11:12 dovecot_login authenticator failed for (helo) [203.0.113.5]:51234 I=[192.0.2.1]:587: 535 Incorrect authentication data (set_id=bob@example.com)
--   2024-05-14 10:11:12 SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[203.0.113.5] input="..."
--   2024-05-14 10:11:12 SMTP call from (helo) [203.0.113.5] dropped: too many syntax or protocol errors (last command was "...")
--   2024-05-14 10:11:12 H=(helo) [203.0.113.5] F=<a@example.org> rejected RCPT <b@example.net>: relay not permitted
-- Optional log_selector fields are accepted: +pid ("[1234] "), +incoming_port (":51234"),
-- +incoming_interface (" I=[192.0.2.1]:25"), and a time zone/milliseconds after the date.
-- The client's host name and HELO come before the address: the host name is DNS data (no
-- spaces) and the HELO is matched as one word in parentheses, so neither can supply the address;
-- the SMTP AUTH id (set_id=...) and the client's input come after it.
local host = [=[(?:[\w.-]+ )?(?:\(\S*\) )?\[<HOST>\](?::\d+)?(?: I=\[[\w.:]+\](?::\d+)?)?]=]
local pre = [=[^\s*(?:\[\d+\] )?]=]

FILTER{ "exim";
  enabled = true;
  source = "exim";
  engine = "fail2ban";
  failregex = {
    pre .. [=[[\w-]+ authenticator failed for ]=] .. host .. [=[: 535 Incorrect authentication data(?: \(set_id=<F-USER>.*</F-USER>\))?$]=],
    pre .. [=[SMTP protocol synchronization error \([^)]*\): rejected (?:connection from|"[^"]*" from) H=]=] .. host .. [=[(?: input=".*")?$]=],
    pre .. [=[SMTP call from ]=] .. host .. [=[ dropped: too many (?:syntax or protocol errors|unrecognized commands|nonmail commands)(?: \(last command was ".*"\))?$]=],
    pre .. [=[H=]=] .. host .. [=[(?: \S+=\S+)*? rejected RCPT <[^>]*>: relay not permitted$]=],
  };
}
