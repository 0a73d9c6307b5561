"""Probe the public API with bad input and print how it answers (issue 17).

Runs every case of ``tests/fuzz_cases.py`` (the table ``tests/test_fuzz.py`` checks) once, seeded,
each under a time limit, and prints the tally tried / clear / ok / silent / refused / crash / hang
followed by every case that did not end as it should:

    .venv/bin/python benchmarks/probe_api.py            # all cases
    .venv/bin/python benchmarks/probe_api.py --timeout 5 --only evaluate
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch
from fuzz_cases import GOOD, OUTCOMES, cases, run_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    selected = [c for c in cases() if args.only in c.name]
    tally: collections.Counter[str] = collections.Counter()
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    bad = []
    start = time.perf_counter()
    for case in selected:
        outcome = run_case(case, args.timeout)
        tally[outcome.kind] += 1
        by_module[case.module][outcome.kind] += 1
        if outcome.kind not in GOOD[case.expect]:
            bad.append((case, outcome))
    seconds = time.perf_counter() - start
    columns = ("tried", *OUTCOMES)
    print(f"{len(selected)} bad-input calls in {seconds:.0f} s (expected: error {sum(c.expect == 'error' for c in selected)}, "
          f"result {sum(c.expect == 'result' for c in selected)}, either {sum(c.expect == 'either' for c in selected)})")  # fmt: skip
    print()
    print(" ".join(f"{c:>8}" for c in columns))
    print(" ".join(f"{n:>8}" for n in (len(selected), *(tally[o] for o in OUTCOMES))))
    print()
    print(f"{'by module':<12}" + " ".join(f"{c:>8}" for c in columns))
    for module, counts in sorted(by_module.items()):
        row = (sum(counts.values()), *(counts[o] for o in OUTCOMES))
        print(f"{module:<12}" + " ".join(f"{n:>8}" for n in row))
    print()
    print(f"{len(bad)} cases did not end as they should:")
    for case, outcome in bad:
        print(f"  [{outcome.kind}] {case.name} (expected {case.expect}): {outcome.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
