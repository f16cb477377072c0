-- Windows sources. The event-log source reads this machine's event log (a PowerShell worker;
-- wevtutil polling where PowerShell cannot run); the channels and event ids it reads are those
-- the enabled filters select with `events`. Its filters are enabled on Windows only.
--   mode = 'auto' | 'powershell' | 'wevtutil', poll = 2 (wevtutil interval, s),
--   max_age = 86400 (skip older events when catching up after a restart), render = true
SOURCE{ "windows-events", "eventlog:" }

-- Events forwarded by NXLog CE (any platform): one UDP datagram per event, either lua-spylog's
-- format or JSON (recommended: one line per event, EventData fields as keys). NXLog output section:
--   <Output spylog>
--     Module  om_udp
--     Host    <spylog host>
--     Port    614
--     Exec    $raw_event = "EventID: " + $EventID + "; " + $Message;    # or: Exec to_json();
--   </Output>
-- (input: im_msvistalog with a QueryXML for the channels and event ids the nxlog filters name)
SOURCE{ "nxlog", "net:udp://127.0.0.1:614" }

-- IIS web sites (W3C format, the default fields) and the IIS FTP service. IIS starts a new file
-- every day (u_exYYMMDD.log); point these at your site ids. Windows paths on every platform: these
-- services exist only there (the filters reading them are enabled on Windows only).
SOURCE{ "iis-w3svc1", [[file:C:\inetpub\logs\LogFiles\W3SVC1\u_ex*.log]] }
SOURCE{ "iis-ftpsvc", [[file:C:\inetpub\logs\LogFiles\FTPSVC2\u_ex*.log]] }
-- Exchange front-end SMTP receive protocol log.
SOURCE{ "exchange-smtp-receive", [[file:C:\Program Files\Microsoft\Exchange Server\V15\TransportRoles\Logs\FrontEnd\ProtocolLog\SmtpReceive\RECV*.LOG]] }
