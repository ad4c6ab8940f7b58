"""The `consulta` command's table of lazily imported commands matches the modules' own lists."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from gateway.cli import COMMAND_MODULES

MODULES = sorted(set(COMMAND_MODULES.values()))


@pytest.mark.parametrize("module_name", MODULES)
def test_each_module_defines_exactly_the_commands_the_table_gives_it(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = sorted(command.name or "" for command in module.COMMANDS)
    listed = sorted(name for name, where in COMMAND_MODULES.items() if where == module_name)
    assert defined == listed


def test_running_results_imports_neither_flask_nor_twilio() -> None:
    probe = (
        "import sys; from click.testing import CliRunner; from gateway.cli import main; "
        "CliRunner().invoke(main, ['results', '--help']); "
        "print(sorted(m for m in ('flask', 'twilio', 'rq') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
