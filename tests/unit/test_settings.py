"""Settings from the environment: what is taken, and a clear refusal for what cannot be used."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        pytest.param({}, "reply_sends_at_once", 8, id="replies go 8 at a time by default"),
        pytest.param(
            {"REPLY_SENDS_AT_ONCE": "32"}, "reply_sends_at_once", 32, id="more sends at once"
        ),
        pytest.param({"REPLY_SENDS_AT_ONCE": ""}, "reply_sends_at_once", 8, id="empty is unset"),
        pytest.param({"TWILIO_EDGE": "dublin"}, "twilio_edge", "dublin", id="Twilio's edge"),
        pytest.param({"TWILIO_REGION": "ie1"}, "twilio_region", "ie1", id="Twilio's region"),
        pytest.param({"PORT": " 8080 "}, "port", 8080, id="a number with spaces around it"),
    ],
)
def test_a_setting_is_read_from_the_environment(
    env: dict[str, str], field: str, value: object
) -> None:
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        pytest.param(
            {"REPLY_SENDS_AT_ONCE": "4"},
            "REPLY_SENDS_AT_ONCE must be from 8 to 64, not 4",
            id="fewer sends at once than a job's time bound allows",
        ),
        pytest.param(
            {"REPLY_SENDS_AT_ONCE": "65"},
            "REPLY_SENDS_AT_ONCE must be from 8 to 64, not 65",
            id="more sends at once than one process should hold",
        ),
        pytest.param(
            {"PORT": "eighty"},
            "PORT must be a whole number, not 'eighty'",
            id="a number that is not one",
        ),
        pytest.param(
            {"ACK_AFTER": "memory"},
            "ACK_AFTER must be one of database, redis, not 'memory'",
            id="a choice that is not offered",
        ),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_by_name(
    env: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == complaint


def test_the_command_names_a_bad_setting_in_one_line_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"BATCH_SIZE": "lots"})
    assert result.exit_code == 1
    assert result.output == "Error: BATCH_SIZE must be a whole number, not 'lots'\n"
