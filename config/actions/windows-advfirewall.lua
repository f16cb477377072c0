-- Per-ban command actions for Windows, compatible with lua-spylog's `advfirewall` and `ipsec`
-- actions: each ban runs one netsh command (one firewall rule or IPsec filter per address), each
-- unban another. They are plain command templates; tags such as <HOST>, <JAIL>, <FILTER>,
-- <BAN_UUID> and <BANTIME> are filled in per ban, and every command runs from an argument list,
-- never through cmd.exe.
--
-- Prefer spylog's built-in Windows Firewall action (`'@spylog.actions.firewall'`): it keeps all
-- bans in a few rules of up to 1,000 addresses (spylog-v4-NNNN / spylog-v6-NNNN), batches the
-- writes, and `spylog firewall list|clear` manage them. Thousands of one-address rules, as these
-- templates make, slow down the Windows Firewall service and its console.
--
-- The blocked address is the ban's offender: a single address, or a network when the jail bans
-- IPv6 prefixes. (lua-spylog appended `/<NET>` with net = 32, which for an IPv6 address would
-- block a whole /32; spylog leaves it out.)
--
-- Parameters (override per jail: `action = {{'advfirewall', {port = '3389', protocol = 'tcp'}}}`):
--   port      local port(s): any, a number, a list `5060,5080`, rpc, rpc-epmap, teredo
--   protocol  any, tcp, udp, icmpv4, icmpv6 or a number; a port needs tcp or udp, and older
--             Windows takes one protocol per rule (use two actions for tcp and udp)
--   program   (advfirewall-program) full path of the program the rule applies to
--   service   (advfirewall-service) short name of the service the rule applies to; `any`
--             matches services only, not ordinary programs

if PLATFORM ~= 'windows' then return end

local function rule(extra)
  local line = table.concat({
    'netsh advfirewall firewall add rule',
    'name="spylog <BAN_UUID>"',
    'dir=in interface=any action=block',
    'description="spylog: jail <JAIL>, filter <FILTER>, <BANTIME> s"',
    'remoteip=<HOST>',
    'localport=<PORT>',
    'protocol=<PROTOCOL>',
    extra,
  }, ' ')
  return (line:gsub('%s+$', ''))
end

local remove = 'netsh advfirewall firewall delete rule name="spylog <BAN_UUID>"'

local defaults = {
  port     = 'any';
  protocol = 'any';
  service  = 'any';
}

ACTION{ "advfirewall",
  ban        = rule('');
  unban      = remove;
  parameters = defaults;
  options    = { timeout = 10000 };
}

ACTION{ "advfirewall-program",
  ban        = rule('program="<PROGRAM>"');
  unban      = remove;
  parameters = defaults;
  options    = { timeout = 10000 };
}

ACTION{ "advfirewall-service",
  ban        = rule('service="<SERVICE>"');
  unban      = remove;
  parameters = defaults;
  options    = { timeout = 10000 };
}

ACTION{ "advfirewall-program-service",
  ban        = rule('program="<PROGRAM>" service="<SERVICE>"');
  unban      = remove;
  parameters = defaults;
  options    = { timeout = 10000 };
}

-- Legacy IPsec filters (Windows XP / Server 2003 era, still accepted by netsh). Once, before
-- the first ban, create the policy the filter list belongs to:
--   netsh ipsec static add filteraction name=spylog-block action=block
--   netsh ipsec static add filter filterlist=spylog srcaddr=192.0.2.1 dstaddr=me
--   netsh ipsec static add policy name=spylog assign=yes activatedefaultrule=no
--   netsh ipsec static add rule name=spylog policy=spylog filterlist=spylog filteraction=spylog-block
--   netsh ipsec static delete filter filterlist=spylog srcaddr=192.0.2.1 dstaddr=me
-- and to remove everything: netsh ipsec static delete policy name=spylog
ACTION{ "ipsec",
  ban        = 'netsh ipsec static add filter filterlist=<FILTERLIST> srcaddr=<HOST> dstaddr=me description="spylog <JAIL> <FILTER> <BANTIME>"';
  unban      = 'netsh ipsec static delete filter filterlist=<FILTERLIST> srcaddr=<HOST> dstaddr=me';
  unique     = 'ipsec <HOST>';
  parameters = { filterlist = 'spylog' };
  options    = { timeout = 10000 };
}
