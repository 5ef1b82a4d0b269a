"""Autobahn TestSuite helpers for run.sh (Python 2.7 and 3).

  summarise.py config TEMPLATE OUT URL OUTDIR   write a wstest config with the run's URL/outdir
  summarise.py report INDEX_JSON AGENT OUT      compact {case: behavior} of one agent's report
  summarise.py check ACTUAL EXPECTED            counts, FAILED cases and differences; exit 1 on any
  summarise.py freeport                         print a free TCP port on 127.0.0.1
"""
import collections
import json
import socket
import sys


def case_key(case):
    return [int(part) for part in case.split(".")]


def load(path):
    with open(path) as f:
        return json.load(f, object_pairs_hook=collections.OrderedDict)


def write(path, data):
    with open(path, "w") as f:
        f.write(json.dumps(data, indent=1, separators=(",", ": ")) + "\n")


def config(template, out, url, outdir):
    data = load(template)
    if "servers" in data:
        for server in data["servers"]:
            server["url"] = url
    else:
        data["url"] = url
    data["outdir"] = outdir
    write(out, data)


def report(index, agent, out):
    """Per case: `behavior`, plus `behaviorClose` when it is not OK (it then matters too)."""
    try:
        cases = load(index)[agent]
    except (IOError, KeyError):
        sys.exit("no results for agent %s in %s" % (agent, index))
    summary = collections.OrderedDict()
    for case in sorted(cases, key=case_key):
        result = cases[case]
        behavior = result["behavior"]
        if result.get("behaviorClose") not in ("OK", None):
            behavior = "%s (close: %s)" % (behavior, result["behaviorClose"])
        summary[case] = behavior
    write(out, summary)


def counts(summary):
    totals = collections.Counter(v.split(" ")[0] for v in summary.values())
    return ", ".join("%s %d" % (k, totals[k]) for k in sorted(totals))


def check(actual_path, expected_path):
    actual = load(actual_path)
    print("results: %d cases: %s" % (len(actual), counts(actual)))
    failed = [c for c, v in actual.items() if "FAILED" in v]
    ok = True
    if failed:
        ok = False
        print("FAILED cases: %s" % ", ".join(failed))
    try:
        expected = load(expected_path)
    except IOError:
        print("no expected results at %s" % expected_path)
        return 1
    for case in sorted(set(actual) | set(expected), key=case_key):
        a, e = actual.get(case, "(missing)"), expected.get(case, "(missing)")
        if a != e:
            ok = False
            print("  %s: expected %s, got %s" % (case, e, a))
    return 0 if ok else 1


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "config":
        config(*args)
    elif command == "report":
        report(*args)
    elif command == "check":
        sys.exit(check(*args))
    elif command == "freeport":
        freeport()
    else:
        sys.exit(__doc__)
