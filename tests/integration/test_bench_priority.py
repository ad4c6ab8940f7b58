"""`bench.priority`: a niceness given to a session weighs it against the machine's others.

Each case starts a real process leading a session of its own, as the benchmark starts every
server, and reads back what the kernel holds for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import priority


@pytest.fixture
def session_leader() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("nice", [3, 10], ids=["a mild niceness", "a large niceness"])
def test_a_niceness_given_to_a_session_is_the_one_it_ends_up_with(
    session_leader: subprocess.Popen[bytes], nice: int
) -> None:
    assert priority.set_niceness(session_leader.pid, nice) == nice
    assert priority.niceness(session_leader.pid) == nice


def test_with_autogroups_on_the_niceness_goes_to_the_sessions_autogroup(
    session_leader: subprocess.Popen[bytes],
) -> None:
    if not priority.autogroups_on():
        pytest.skip("this kernel does not group processes by session")
    before = os.getpriority(os.PRIO_PROCESS, session_leader.pid)
    priority.set_niceness(session_leader.pid, 7)
    autogroup = Path(f"/proc/{session_leader.pid}/autogroup").read_text()
    assert autogroup.split()[-2:] == ["nice", "7"]
    # The process's own niceness, which weighs it only inside its session, is left alone.
    assert os.getpriority(os.PRIO_PROCESS, session_leader.pid) == before


def test_without_autogroups_the_niceness_goes_to_the_process_group(
    session_leader: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    switch = tmp_path / "sched_autogroup_enabled"
    switch.write_text("0\n")
    monkeypatch.setattr(priority, "AUTOGROUP_SWITCH", switch)
    priority.set_niceness(session_leader.pid, 4)
    assert os.getpriority(os.PRIO_PROCESS, session_leader.pid) == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [("1\n", True), ("0\n", False), (None, False)],
    ids=["switched on", "switched off", "a kernel without the knob"],
)
def test_autogroups_are_on_only_where_the_kernel_says_so(
    tmp_path: Path, content: str | None, expected: bool
) -> None:
    switch = tmp_path / "sched_autogroup_enabled"
    if content is not None:
        switch.write_text(content)
    assert priority.autogroups_on(switch) is expected
