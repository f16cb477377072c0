-- Notifications. Not used by the packaged jails: add them to a jail's action list, e.g.
--   action = { "firewall", "mail" }
-- and set the server and addresses below.

-- Mail on every ban (SMTP).
ACTION{ "mail";
  ban = "@spylog.actions.mail";
  options = {
    server = { address = "127.0.0.1", port = 25 };
    from   = { title = "spylog", address = "spylog@localhost" };
    to     = { title = "Administrator", address = "root@localhost" };
  };
}

-- A JSON POST to a URL on every ban and unban (chat bots, SIEMs, central block lists).
ACTION{ "webhook";
  ban   = "@spylog.actions.webhook";
  unban = "@spylog.actions.webhook";
  options = {
    url = "http://127.0.0.1:8080/spylog";
    timeout = 5000;
  };
}
