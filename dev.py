#!/usr/bin/env python3
"""Two commands on a fresh machine with only Python and pip.

    python3 dev.py demo   # install into .venv, then run `consulta demo`
    python3 dev.py test   # install into .venv with the test extras, then lint, type-check, pytest

Anything after the command is passed on (`python3 dev.py test -k webhook`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


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
    if not rest:  # the whole check, as CI runs it
        run(str(BIN / "ruff"), "check", ".")
        run(str(BIN / "mypy"))
    run(str(BIN / "python"), "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
