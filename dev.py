#!/usr/bin/env python3
"""Two commands on a fresh machine with only Python and pip.

    python3 dev.py demo   # install into .venv, then run `consulta demo`
    python3 dev.py test   # install into .venv with the test extras (and Debian's chromium for
                          # the browser tests, when run as root), then lint, type-check,
                          # audit the dependencies (pip-audit), pytest
    python3 dev.py chaos  # install as `test` does, then the fault suite (`pytest -m fault`) at
                          # full scale; one JSON line per test in var/fault-report.jsonl

Anything after the command is passed on (`python3 dev.py test -k webhook`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used


def ensure_installed(extras: str) -> None:
    """Create .venv and install the project into it, again only when pyproject.toml changes."""
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "install", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def ensure_chromium() -> None:
    """The browser tests drive Debian's chromium; install it when we may (root, with apt)."""
    if Path(CHROMIUM).exists():
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
        return
    print(f"{CHROMIUM} is missing and cannot be installed here: the browser tests will fail.")
    print("Install it (Debian: sudo apt-get install chromium) and run again.")


def run(*command: str) -> None:
    code = subprocess.run(command, cwd=ROOT).returncode
    if code != 0:
        sys.exit(code)


AUDIT_SECONDS = 240  # the whole audit; each request to the advisory feed also has its own 15 s


def audit() -> None:
    """pip-audit over .venv: a known vulnerability fails the run; an audit that could not be done
    only says so, loudly, unless AUDIT_REQUIRED=1.

    Why a missing audit does not fail by default: it checks other people's advisories, not this
    code, so a slow or unreachable feed would turn every run red for a reason no change here can
    fix, and a check that fails at random soon gets ignored. Why it is never silent: pip-audit
    prints "No known vulnerabilities found" even when the feed answered for no package at all
    (a PyPI mirror without the per-version JSON API does that), so the packages it could not
    audit are counted and named here. A release build sets AUDIT_REQUIRED=1.
    """
    command = [str(BIN / "pip-audit"), "--progress-spinner", "off", "--skip-editable"]
    command += ["--timeout", "15", "--format", "json"]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=AUDIT_SECONDS
        )
    except subprocess.TimeoutExpired:
        return _audit_not_done(f"no answer within {AUDIT_SECONDS} s")
    try:
        packages = json.loads(done.stdout)["dependencies"]
    except (ValueError, KeyError):  # no report: the feed could not be reached at all
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        return _audit_not_done(next((line for line in lines if "ERROR" in line), lines[-1]))
    vulnerable = [p for p in packages if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"VULNERABLE {package['name']} {package['version']}: {vuln['id']} ({fixed})")
    if vulnerable:
        sys.exit("pip-audit: known vulnerabilities; raise the minimums in pyproject.toml")
    skipped = [p["name"] for p in packages if p.get("skip_reason")]
    if skipped:
        reason = next(p["skip_reason"] for p in packages if p.get("skip_reason"))
        return _audit_not_done(f"{len(skipped)} of {len(packages)} packages not audited: {reason}")
    print(f"pip-audit: {len(packages)} packages, no known vulnerabilities")
    return None


def _audit_not_done(why: str) -> None:
    print(f"\n!! DEPENDENCY AUDIT NOT DONE: {why}\n")
    if os.environ.get("AUDIT_REQUIRED") == "1":
        sys.exit("AUDIT_REQUIRED=1: a run without a dependency audit fails")


def chaos(rest: list[str]) -> None:
    """The fault suite at the N docs/reliability.md quotes (it takes a while), then its summary."""
    report = ROOT / "var" / "fault-report.jsonl"
    report.parent.mkdir(exist_ok=True)
    report.unlink(missing_ok=True)
    env = dict(os.environ, FAULT_SCALE="full", FAULT_REPORT=str(report))
    # -s shows each FAULT line as it comes; the per-test timeout is for the small runs.
    command = [str(BIN / "python"), "-m", "pytest", "-m", "fault", "-s", "--timeout=0", *rest]
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    print(f"\n== fault suite at full scale: {report.relative_to(ROOT)} ==")
    for line in report.read_text().splitlines() if report.exists() else []:
        entry = json.loads(line)
        name, n, failures = entry.pop("test"), entry.pop("n"), entry.pop("failures")
        entry.pop("at", None)
        figures = " ".join(f"{key}={value}" for key, value in entry.items())
        print(f"{'FAIL' if failures else 'ok  '} {name}: N={n} failures={failures} {figures}")
    sys.exit(code)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "chaos"}:
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_installed("")
        # Replace this process, so Ctrl-C and signals reach the demo directly.
        os.execv(str(BIN / "consulta"), [str(BIN / "consulta"), "demo", *rest])  # noqa: S606
    ensure_installed("test")
    if command == "chaos":
        chaos(rest)
    ensure_chromium()
    if not rest:  # the whole check, as CI runs it
        run(str(BIN / "ruff"), "check", ".")
        run(str(BIN / "mypy"))
        audit()
    run(str(BIN / "python"), "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
