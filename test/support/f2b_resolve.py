#!/usr/bin/env python3
"""Resolve fail2ban filters with fail2ban's own FilterReader (differential test helper).

Reads a JSON list of cases from stdin, each {"basedir": DIR, "name": FILTER, "opts": {...}}
where DIR contains filter.d/, or {"spec": "NAME[p=v, ...]"} (a jail's filter value). Writes a JSON
list with one result per case:
  {"ok": true, "combined": {...getCombined()...}, "stream": {...from convert()...}}
  {"ok": true, "name": NAME, "params": {...}}          (for a "spec" case, via extractOptions)
  {"ok": false, "error": "..."}
Only fail2ban's installed Python package is used (Debian: /usr/lib/python3/dist-packages).
"""
import json
import logging
import sys

logging.disable(logging.CRITICAL)

from fail2ban.client.filterreader import FilterReader  # noqa: E402
from fail2ban.helpers import extractOptions  # noqa: E402


def resolve(case):
    if "spec" in case:
        name, params = extractOptions(case["spec"])
        return {"ok": True, "name": name, "params": params}
    reader = FilterReader(case["name"], "jail", dict(case.get("opts") or {}), basedir=case["basedir"])
    if not reader.read():
        return {"ok": False, "error": "filter not found"}
    reader.getOptions({})
    combined = reader.getCombined()
    stream = {"failregex": [], "ignoreregex": [], "journalmatch": []}
    for cmd in reader.convert():
        kind, _jail, opt = cmd[0], cmd[1], cmd[2]
        if opt in ("addfailregex", "addignoreregex"):
            key = opt[3:]
            stream[key] += cmd[3] if kind == "multi-set" else [cmd[3]]
        elif opt == "addjournalmatch":
            stream["journalmatch"].append(cmd[3:])
        else:
            stream[opt] = cmd[3]
    return {"ok": True, "combined": combined, "stream": stream}


def main():
    cases = json.load(sys.stdin)
    out = []
    for case in cases:
        try:
            out.append(resolve(case))
        except Exception as e:  # any failure is a result to compare, not a crash
            out.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
