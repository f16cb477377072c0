-- Shared syslog prefix helpers for spylog's shipped filters (engine = "fail2ban").
--
-- The fail2ban engine cuts the date out of a line before any regex sees it, so what is left of
--   "May 14 10:11:12 host sshd[1234]: Failed password ..."  is  " host sshd[1234]: Failed password ..."
-- and these helpers describe everything between the start of that text and the message itself.
--
-- Accepted forms (all optional parts may be absent):
--   [] <auth.info> host sshd[1234]: msg            date in brackets, syslog-ng facility.priority
--   <38> host sshd[1234]: msg                       RFC 3164 with the PRI kept
--   host auth.info sshd[1234]: msg                  facility.priority after the host name
--   host sshd: msg                                  no pid
--   Tue  CEST host sshd[1234]: msg                  journalctl -o short-full (weekday, zone left over)
--   sshd[1234]: msg                                 no host name (spylog's own log, some journals)
--   <38>1  host sshd 1234 - - msg                   RFC 5424 (APP-NAME PROCID MSGID STRUCTURED-DATA)
--   <38>1  host sshd 1234 ID47 [ex@32473 a="b"] msg RFC 5424 with structured data
--   host sshd[1234]: [ID 800047 auth.info] msg      Solaris message id
--
-- API
--   syslog.prefix(daemon)  '^' .. syslog.head(daemon): anchored prefix, ends right before the message
--   syslog.head(daemon)    the same without '^', to combine with alternatives of your own
--   syslog.ident(daemon)   just the "daemon[pid]:" / RFC 5424 "daemon procid msgid sd" part
--   syslog.line(daemon, message)  prefix(daemon) .. message .. '$'
--   daemon is a regex (Python re syntax), e.g. 'sshd(?:-session)?' or 'postfix(?:-\w+)?/(?:\w+/)?smtpd';
--   nil means any program name.
--   The pieces are exported too: syslog.ambit, syslog.pri, syslog.weekday, syslog.zone,
--   syslog.hostname, syslog.facility, syslog.msgid, syslog.sd, syslog.anydaemon.

local M = {}

-- "[]" left where a bracketed date was cut out
M.ambit = [[(?:\[\]\s*)?]]
-- "<38>" (RFC 3164 PRI kept by a relay) or "<38>1" (RFC 5424 PRI + VERSION), and "<auth.info>"
M.pri = [[(?:<\d{1,3}>\d{0,2}\s*)?(?:<[a-z0-9]+\.[a-z]+>\s*)?]]
-- what journalctl -o short-full leaves around its ISO date: weekday before, zone name after
M.weekday = [[(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+)?]]
M.zone = [[(?:[A-Z]{3,5}\s+)?]]
M.hostname = [[(?:\S+\s+)?]]
M.facility = [[(?:(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|security|local[0-7])\.(?:emerg|alert|crit|err|error|warning|warn|notice|info|debug)\s+)?]]
-- RFC 5424 STRUCTURED-DATA: "-" or one or more [id param="value" ...] elements
M.sd = [=[(?:-|(?:\[[^\]\s"]+(?:\s+[^\s="\]]+="(?:[^"\\]|\\.)*")*\])+)]=]
-- Solaris "[ID 800047 auth.info]"
M.msgid = [[(?:\[ID \d+ [\w.]+\]\s+)?]]
M.anydaemon = [=[[^\s\[\]:]+]=]

function M.ident(daemon)
  local d = '(?:' .. (daemon or M.anydaemon) .. ')'
  return d .. [[(?:(?:\[\d+\])?:\s+|\s+(?:\d+|-)\s+\S+\s+]] .. M.sd .. [[\s+)]]
end

function M.head(daemon)
  return [[\s*]] .. M.ambit .. M.pri .. M.weekday .. M.zone .. M.hostname .. M.facility
    .. M.ident(daemon) .. M.msgid
end

function M.prefix(daemon)
  return '^' .. M.head(daemon)
end

function M.line(daemon, message)
  return M.prefix(daemon) .. message .. '$'
end

return M
