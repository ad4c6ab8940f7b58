#!/usr/bin/env python3
"""Two commands on a fresh machine with only Python and pip.

    python3 dev.py demo   # install into .venv, then run `consulta demo`
    python3 dev.py test   # install into .venv with the test extras (and Debian's chromium for
                          # the browser tests, when run as root), then lint, type-check, pytest

Anything after the command is passed on (`python3 dev.py test -k webhook`).
"""

from __future__ import annotations

import hashlib
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


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test"}:
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure_installed("")
        # Replace this process, so Ctrl-C and signals reach the demo directly.
        os.execv(str(BIN / "consulta"), [str(BIN / "consulta"), "demo", *rest])  # noqa: S606
    ensure_installed("test")
    ensure_chromium()
    if not rest:  # the whole check, as CI runs it
        run(str(BIN / "ruff"), "check", ".")
        run(str(BIN / "mypy"))
    run(str(BIN / "python"), "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
