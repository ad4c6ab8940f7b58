"""How big a fault test runs: small in every test run, full for the documented run.

`FAULT_SCALE=full` (set by `python3 dev.py chaos`) asks for the N that docs/reliability.md quotes;
anything else runs the small N that keeps the ordinary suite quick.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def full() -> bool:
    return os.environ.get("FAULT_SCALE") == "full"


def n(small: int, full_n: int) -> int:
    return full_n if full() else small


def report(test: str, n: int, failures: int, **figures: object) -> None:
    """One line per test, printed and (with FAULT_REPORT=path) appended as JSON for the docs."""
    shown = " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\nFAULT {test}: N={n} failures={failures} {shown}".rstrip())
    target = os.environ.get("FAULT_REPORT")
    if target:
        line = {"test": test, "n": n, "failures": failures, "at": time.time(), **figures}
        with Path(target).open("a") as out:
            out.write(json.dumps(line, default=str) + "\n")
