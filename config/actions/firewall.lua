-- What a ban does. spylog's built-in firewall action bans in the host's own firewall:
--   Linux:   nftables (a table `inet spylog` with sets whose elements expire by themselves), or
--            ipset + iptables where nft is missing;
--   Windows: Windows Defender Firewall rules `spylog-v4-NNNN` / `spylog-v6-NNNN`.
-- Bans are kept in spylog's data directory and re-applied after a restart.
ACTION{ "firewall";
  ban   = "@spylog.actions.firewall";
  unban = "@spylog.actions.firewall";
}

-- Writes each ban and unban to spylog's log only: use it to try a jail before it blocks anyone
-- (`action = "log"` in the jail), or next to the firewall.
ACTION{ "log";
  ban   = "@spylog.actions.log";
  unban = "@spylog.actions.log";
}
