"""A niceness that takes effect whether or not the kernel groups processes by session.

With `kernel.sched_autogroup_enabled = 1` (many distributions' default, and the machine this was
measured on) the scheduler first shares the CPUs between sessions, one "autogroup" each, and only
then between the processes inside a session. A process's niceness weighs it against the other
processes of its own session and nothing else (sched(7), "The autogroup feature"). The benchmark
starts every process as the leader of a session of its own, so `setpriority` on one changed
nothing at all. What weighs one session against the others is the autogroup's own niceness, in
`/proc/PID/autogroup`: the counterpart of a systemd unit's `CPUWeight=`, which is how a
deployment that co-locates the web and the workers would give the web its precedence.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")


def autogroups_on(switch: Path | None = None) -> bool:
    try:
        return (switch or AUTOGROUP_SWITCH).read_text().strip() == "1"
    except OSError:  # no such knob: a kernel built without autogroups
        return False


def set_niceness(session_leader: int, nice: int) -> int:
    """Give the session led by `session_leader` (every process in it) this niceness against the
    rest of the machine; the niceness it ends up with. Below 0 needs root."""
    if autogroups_on():
        Path(f"/proc/{session_leader}/autogroup").write_text(str(nice))
    else:
        os.setpriority(os.PRIO_PGRP, session_leader, nice)
    return niceness(session_leader)


def niceness(pid: int) -> int:
    """What weighs this process against the machine's others: its autogroup's niceness where
    autogroups are on, else its own."""
    if autogroups_on():
        # "/autogroup-85 nice 0"
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    return os.getpriority(os.PRIO_PROCESS, pid)
