"""Reference matcher for the differential tests: Python's own `re`.

Reads a JSON list of cases {"p": pattern, "flags": "im", "s": [subjects]} on stdin and prints a
JSON list: per case either {"error": msg} or {"r": [null | {"span": [a, b], "g": [...], "n": {...}}]}
where g[i] is group i+1 (None when it did not participate) and n the named groups' numbers.
"""
import json
import re
import sys

cases = json.load(sys.stdin)
out = []
for c in cases:
    fl = 0
    for ch in c.get("flags", ""):
        fl |= {"i": re.I, "m": re.M, "s": re.S}[ch]
    try:
        rx = re.compile(c["p"], fl)
    except Exception as e:  # noqa: BLE001 - any compile failure is reported
        out.append({"error": str(e)})
        continue
    res = []
    for s in c["s"]:
        m = rx.search(s)
        if m is None:
            res.append(None)
        else:
            res.append({"span": list(m.span()), "g": list(m.groups()), "n": dict(rx.groupindex)})
    out.append({"r": res})
json.dump(out, sys.stdout)
