"""The load process: signed Twilio webhooks at a set rate (or as fast as they are answered), and
Africa's Talking USSD sessions alongside, over keep-alive loopback connections.

    python -m bench.load SPEC.json      (started by bench.pipeline; not meant to be run by hand)

It is a process of its own so that its CPU is measured apart from the gateway's. It builds and
signs every request first, says READY, and waits for `go` on stdin. Then, on one asyncio loop:
the SMS senders, the USSD sessions, and a prober that watches a sample of acknowledged messages
until the worker's commit makes them visible as done. It says LOADED when the timed phase ends
(so the orchestrator can stop its CPU clocks), waits for the drain, writes its records to the
spec's `out` folder and says DONE. Every line it prints on stdout is `WORD {json}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import plan as plans
from bench import priority, probes, wire
from bench.plan import Request

HOPS = ("dial", "vote", "option", "confirm")


@dataclass
class Clock:
    """perf_counter for intervals; wall = perf + offset, the clock the database stamps use."""

    offset: float = field(default_factory=lambda: time.time() - time.perf_counter())

    def wall(self, perf: float) -> float:
        return perf + self.offset


@dataclass
class SmsRecord:
    """What happened to each request of the plan, by position (status 0: never sent)."""

    size: int
    status: list[int] = field(init=False)
    due: list[float] = field(init=False)
    sent: list[float] = field(init=False)
    done: list[float] = field(init=False)
    reconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status, self.due = [0] * self.size, [0.0] * self.size
        self.sent, self.done = [0.0] * self.size, [0.0] * self.size


@dataclass
class UssdRecord:
    hops: dict[str, list[float]] = field(default_factory=lambda: {h: [] for h in HOPS})
    started: int = 0
    completed: int = 0
    abandoned: int = 0  # stopped at the end of the timed phase, before confirming
    errors: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    completed_voters: list[int] = field(default_factory=list)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    nice = prioritised(spec.get("nice", 0))
    started = time.perf_counter()
    plan, reused = plans.build(plans.PlanSpec(**spec["plan"]))
    say(
        "READY",
        requests=len(plan),
        reused_voters=reused,
        sign_seconds=round(time.perf_counter() - started, 2),
        nice=nice,
    )
    if sys.stdin.readline().strip() != "go":
        return 1
    asyncio.run(run(spec, plan))
    return 0


def prioritised(nice: int) -> int:
    """Take this niceness (below 0 needs root); the niceness this process ends up with.

    This process stands in for the provider's servers, which have CPUs of their own. When it
    waits for a CPU behind the gateway, the time it takes to read an answer counts as the
    gateway's latency; served first, it stamps answers when they arrive.
    """
    if nice:
        with contextlib.suppress(PermissionError):
            priority.set_niceness(os.getpid(), nice)  # it leads a session of its own
    return priority.niceness(os.getpid())


def say(word: str, **fields: Any) -> None:
    print(word, json.dumps(fields), flush=True)


async def run(spec: dict[str, Any], plan: list[Request]) -> None:
    clock, record, ussd = Clock(), SmsRecord(len(plan)), UssdRecord()
    stop = asyncio.Event()
    prober = probes.Prober.create(spec.get("probes"), clock.wall)
    sessions = asyncio.create_task(drive_ussd(spec, ussd, stop)) if spec.get("ussd") else None
    begin = time.perf_counter()
    await drive_sms(spec, plan, record, prober)
    end = time.perf_counter()
    stop.set()
    if sessions is not None:
        await sessions
    say("LOADED", start_wall=clock.wall(begin), end_wall=clock.wall(end), seconds=end - begin)
    drained = await prober.drain(spec.get("drain_seconds", 0)) if prober else None
    out = Path(spec["out"])
    write_requests(out / "requests.tsv", plan, record, clock)
    summary = {
        "start_wall": clock.wall(begin),
        "end_wall": clock.wall(end),
        "seconds": end - begin,
        "reconnects": record.reconnects,
        "errors": record.errors,
        "ussd": {**ussd.__dict__, "sessions": spec["ussd"]["sessions"]}
        if spec.get("ussd")
        else None,
        "probes": prober.result() if prober else None,
        "drain": drained,
    }
    (out / "summary.json").write_text(json.dumps(summary))
    say("DONE", out=str(out))


# -- SMS ------------------------------------------------------------------------------------


async def drive_sms(
    spec: dict[str, Any], plan: list[Request], record: SmsRecord, prober: probes.Prober | None
) -> None:
    """`connections` senders; at a set rate they share a queue fed on schedule, at --max each
    sends its next request as soon as its last one is answered."""
    deadline = time.perf_counter() + spec["seconds"]
    connections = [
        wire.Connection(spec["host"], spec["port"], spec.get("timeout", 15.0))
        for _ in range(spec["connections"])
    ]
    if spec["mode"] == "max":
        counter = iter(range(len(plan)))
        jobs = [closed_loop(c, plan, record, prober, counter, deadline) for c in connections]
    else:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        jobs = [open_loop(c, plan, record, prober, queue, deadline) for c in connections]
        jobs.append(schedule(queue, len(plan), spec["rate"], deadline, len(connections), record))
    await asyncio.gather(*jobs)
    for connection in connections:
        record.reconnects += connection.reconnects
        await connection.close()


async def schedule(
    queue: asyncio.Queue[int | None],
    count: int,
    rate: float,
    deadline: float,
    senders: int,
    record: SmsRecord,
) -> None:
    """Release request i at start + i/rate, whatever the answers: an open loop, as providers
    deliver. Latency is also reported from this due time (no coordinated omission)."""
    start, released = time.perf_counter(), 0
    while released < count:
        now = time.perf_counter()
        if now >= deadline:
            break
        due_now = min(count, int((now - start) * rate) + 1)
        for position in range(released, due_now):
            record.due[position] = start + position / rate
            queue.put_nowait(position)
        released = due_now
        await asyncio.sleep(max(0.0005, start + released / rate - time.perf_counter()))
    for _ in range(senders):
        queue.put_nowait(None)


async def open_loop(
    connection: wire.Connection,
    plan: list[Request],
    record: SmsRecord,
    prober: probes.Prober | None,
    queue: asyncio.Queue[int | None],
    deadline: float,
) -> None:
    while (position := await queue.get()) is not None:
        if time.perf_counter() < deadline:  # released but not sent by the end: left unsent
            await send(connection, plan, record, prober, position)


async def closed_loop(  # noqa: PLR0913 - the same parts as the open loop
    connection: wire.Connection,
    plan: list[Request],
    record: SmsRecord,
    prober: probes.Prober | None,
    counter: Any,
    deadline: float,
) -> None:
    while time.perf_counter() < deadline and (position := next(counter, None)) is not None:
        record.due[position] = time.perf_counter()
        await send(connection, plan, record, prober, position)


async def send(
    connection: wire.Connection,
    plan: list[Request],
    record: SmsRecord,
    prober: probes.Prober | None,
    position: int,
) -> None:
    request = plan[position]
    record.sent[position] = time.perf_counter()
    try:
        status, _ = await connection.exchange(request.payload)
    except (OSError, TimeoutError, EOFError, wire.RefusedError, ValueError) as error:
        name = type(error).__name__
        record.errors[name] = record.errors.get(name, 0) + 1
        status = -1
    record.done[position] = time.perf_counter()
    record.status[position] = status
    watched = prober is not None and position % prober.every == 0
    if watched and status == 200 and not request.duplicate and request.kind != plans.BAD_SIGNATURE:
        prober.watch(request.sid, record.done[position])  # type: ignore[union-attr]


def write_requests(path: Path, plan: list[Request], record: SmsRecord, clock: Clock) -> None:
    """One line per request sent: position, kind, duplicate, sid, person, option, status, and
    the wall times it was due, written and answered."""
    with path.open("w") as out:
        for i, request in enumerate(plan):
            if record.status[i] == 0:
                continue
            out.write(
                f"{i}\t{request.kind}\t{int(request.duplicate)}\t{request.sid}\t"
                f"{request.person}\t{request.option}\t{record.status[i]}\t"
                f"{clock.wall(record.due[i]):.6f}\t{clock.wall(record.sent[i]):.6f}\t"
                f"{clock.wall(record.done[i]):.6f}\n"
            )


# -- USSD -----------------------------------------------------------------------------------


def expected_screens(option: int) -> list[tuple[str, str, str]]:
    """(text sent, prefix expected, words expected) for each hop of one vote, as bench.ussd."""
    return [
        ("", "CON ", "1 Votar"),
        ("1", "CON ", "Elige tu proyecto"),
        (f"1*{option}", "CON ", f"Confirmas tu voto por {option} "),
        (f"1*{option}*1", "END ", "Voto enviado. Recibo "),
    ]


async def drive_ussd(spec: dict[str, Any], record: UssdRecord, stop: asyncio.Event) -> None:
    """`sessions` callers in flight, each dialling again as soon as one vote is done."""
    config = spec["ussd"]
    voters = iter(range(config["first_voter"], config["first_voter"] + config["voters"]))
    await asyncio.gather(
        *(
            ussd_caller(spec, config, slot, voters, record, stop)
            for slot in range(config["sessions"])
        )
    )


async def ussd_caller(  # noqa: PLR0913
    spec: dict[str, Any],
    config: dict[str, Any],
    slot: int,
    voters: Any,
    record: UssdRecord,
    stop: asyncio.Event,
) -> None:
    port = config.get("port", spec["port"])  # USSD may have a gunicorn of its own
    connection = wire.Connection(spec["host"], port, 15.0)  # Africa's Talking's limit
    jitter = random.Random(slot)  # noqa: S311 - pacing, not a secret
    think = config["think"]
    if await paused(stop, jitter.uniform(0, think)):
        return
    try:
        while not stop.is_set() and (voter := next(voters, None)) is not None:
            record.started += 1
            await ussd_session(connection, config, voter, record, stop, jitter)
    finally:
        await connection.close()


async def ussd_session(  # noqa: PLR0913
    connection: wire.Connection,
    config: dict[str, Any],
    voter: int,
    record: UssdRecord,
    stop: asyncio.Event,
    jitter: random.Random,
) -> None:
    from bench import synthetic

    think = config["think"]
    form = {
        "sessionId": f"ATUid_{config['tag']}_{voter}",
        "phoneNumber": synthetic.phone(voter),
        "networkCode": "73401",
        "serviceCode": "*123#",
    }
    option = 1 + voter % 5  # every ballot has at least five
    for hop, (text, prefix, words) in zip(HOPS, expected_screens(option), strict=True):
        if hop != "dial" and await paused(stop, jitter.uniform(0.5 * think, 1.5 * think)):
            record.abandoned += 1
            return
        started = time.perf_counter()
        try:
            status, raw = await connection.exchange(
                wire.form_post(config["path"], {**form, "text": text})
            )
        except (OSError, TimeoutError, EOFError, wire.RefusedError, ValueError) as error:
            _count(record, f"{hop}: {type(error).__name__}", "")
            return
        record.hops[hop].append(time.perf_counter() - started)
        body = raw.decode(errors="replace")
        if status != 200 or not body.startswith(prefix) or words not in body:
            _count(record, f"{hop}: HTTP {status}" if status != 200 else f"{hop}: screen", body)
            return
    record.completed += 1
    record.completed_voters.append(voter)


async def paused(stop: asyncio.Event, seconds: float) -> bool:
    """Wait like a person thinking; True if the timed phase ended meanwhile."""
    if seconds <= 0:
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _count(record: UssdRecord, kind: str, answer: str) -> None:
    record.errors[kind] = record.errors.get(kind, 0) + 1
    record.examples.setdefault(kind, answer[:120])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
