-- Attack tools, vulnerability scanners and address harvesters recognised by their User-Agent, in
-- an Apache (or nginx) access log in common/combined format:
--   203.0.113.5 - - [14/May/2024:10:11:12 +0200] "GET / HTTP/1.1" 200 512 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)"
-- The client address is the first field; Apache escapes '"' as \" (nginx as \x22) inside the quoted
-- fields, so a User-Agent or referrer can neither move the address nor close its field early. Only
-- the User-Agent field (the 2nd quoted field after status and size) is searched for the names.
-- The date is taken only from the bracketed field (a date in a URL must not be used).

-- One entry per tool: a plain substring of its User-Agent (matched case-insensitively).
local agents = {
  -- SQL injection, web vulnerability and CMS scanners
  'sqlmap', 'Nikto', 'Nmap Scripting Engine', 'WPScan', 'Acunetix', 'Netsparker', 'Invicti',
  'w3af', 'OpenVAS', 'Nessus', 'Arachni', 'Vega/', 'Skipfish', 'WhatWeb', 'joomscan', 'droopescan',
  'CMSmap', 'Nuclei', 'commix', 'XSStrike', 'Wapiti', 'BlackWidow',
  -- directory and parameter brute forcers
  'DirBuster', 'dirb/', 'gobuster', 'feroxbuster', 'Fuzz Faster U Fool', 'wfuzz', 'dirsearch',
  -- password guessers
  'Hydra', 'Medusa/', 'Ncrack',
  -- mass Internet scanners and exploit kits
  'masscan', 'zgrab', 'ZmEu', 'Morfeus', 'muieblackcat', 'Jorgee', 'l9explore', 'l9tcpid',
  -- e-mail address harvesters
  'EmailCollector', 'EmailSiphon', 'EmailWolf', 'ExtractorPro', 'Email Extractor', 'WebEMailExtrac',
}

-- escape a literal for a Python regex
local function literal(s)
  return (s:gsub('[%^%$%(%)%.%[%]%*%+%-%?|\\{}/]', function(c) return '\\' .. c end))
end
local names = {}
for i, a in ipairs(agents) do names[i] = literal(a) end

local field = [[(?:[^"\\]|\\.)*]]    -- inside a quoted access-log field

FILTER{ "apache-badbots";
  enabled = true;
  source = "apache-access";
  engine = "fail2ban";
  failregex = {
    [[^<HOST> \S+ \S+ \[\] "]] .. field .. [[" \d{3} (?:\d+|-) "]] .. field .. [[" "]] .. field:gsub('%*$', '*?')
      .. [[(?i:]] .. table.concat(names, '|') .. [[)]] .. field .. [["(?: .*)?$]],
  };
  datepattern = [=[^[^\[]*\[(%d/%b/%Y:%H:%M:%S %z)\]]=];
}
