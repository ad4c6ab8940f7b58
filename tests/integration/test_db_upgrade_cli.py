"""`consulta db upgrade` against a database it cannot use: one line saying why, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.support.ports import closed_port_url

REFUSED = "Error: the database refused: "
NO_FOLDER = "Error: cannot create the database's folder: "


def unreachable_server(tmp_path: Path) -> str:
    return closed_port_url("postgresql") + "/consulta"  # refused before any login


def folder_that_cannot_be_made(tmp_path: Path) -> str:
    return "sqlite:////proc/consulta-nowhere/consulta.db"  # /proc takes no new folders


def file_that_is_a_folder(tmp_path: Path) -> str:
    (tmp_path / "consulta.db").mkdir()
    return f"sqlite:///{tmp_path / 'consulta.db'}"


@pytest.mark.parametrize(
    ("database", "said"),
    [
        pytest.param(unreachable_server, REFUSED, id="a server that does not answer"),
        pytest.param(folder_that_cannot_be_made, NO_FOLDER, id="a SQLite folder it cannot make"),
        pytest.param(file_that_is_a_folder, REFUSED, id="a SQLite file that cannot be opened"),
    ],
)
def test_an_unusable_database_is_named_in_one_line(
    database: Callable[[Path], str], said: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"DATABASE_URL": database(tmp_path)})
    assert result.exit_code == 1
    assert result.output.startswith(said), result.output
    assert len(result.output.splitlines()) == 1
    assert "Traceback" not in result.output
