"""Summarizes an Autobahn report: `python3 tests/autobahn/summary.py <reports dir>`.

Prints the case count by behaviour and close behaviour; exits 1 if any case is neither OK,
INFORMATIONAL nor UNIMPLEMENTED (which the suite gives a client that does not make the
permessage-deflate offer a case asks for: ours always offers no context takeover both ways).
"""
import collections
import json
import sys

reports = sys.argv[1]
results = json.load(open(f"{reports}/index.json"))["workerman-rs"]
behaviour = collections.Counter(case["behavior"] for case in results.values())
close = collections.Counter(case["behaviorClose"] for case in results.values())
print(f"{len(results)} cases: {dict(behaviour)}; close handling: {dict(close)}")
unimplemented = sorted(k for k, v in results.items() if v["behavior"] == "UNIMPLEMENTED")
if unimplemented:
    print(f"unimplemented ({len(unimplemented)}): {unimplemented[0]} ... {unimplemented[-1]}")
bad = sorted(k for k, v in results.items()
             if v["behavior"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
             or v["behaviorClose"] not in ("OK", "INFORMATIONAL"))
if bad:
    print("not OK:", ", ".join(bad))
    sys.exit(1)
print(f"report: {reports}/index.html")
