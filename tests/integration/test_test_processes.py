"""The processes a test run starts end with it, even when the run itself is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Stands in for a test run: starts a long sleeper as the tests start `consulta worker`, prints its
# pid, then waits to be killed.
TEST_RUN = """
import subprocess, sys, time
from tests.support.processes import die_with_test_run
child = subprocess.Popen(die_with_test_run([sys.executable, "-c", "import time; time.sleep(120)"]))
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize(
    ("kill_the_run", "child_alive_after"),
    [
        pytest.param(True, False, id="a child of a test run killed with SIGKILL ends with it"),
        pytest.param(False, True, id="a child of a test run still running keeps running"),
    ],
)
def test_a_spawned_process_lives_no_longer_than_its_test_run(
    kill_the_run: bool, child_alive_after: bool
) -> None:
    with subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", TEST_RUN], cwd=ROOT, stdout=subprocess.PIPE
    ) as run:
        assert run.stdout is not None
        child = int(run.stdout.readline())
        try:
            assert wait_until(lambda: alive(child), 10)
            if kill_the_run:
                run.kill()
                run.wait()
            time.sleep(0.5)  # the signal is immediate; give the child's exit a moment
            assert wait_until(lambda: alive(child) == child_alive_after, 10)
        finally:
            run.kill()
            if alive(child):
                os.kill(child, signal.SIGKILL)
