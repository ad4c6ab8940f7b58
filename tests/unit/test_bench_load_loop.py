"""`bench.load.loop_runner`: the load process runs its coroutines on the loop its spec names."""

from __future__ import annotations

import asyncio

import pytest

from bench.load import loop_runner


async def loop_class_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@pytest.mark.parametrize(
    ("name", "module"),
    [("uvloop", "uvloop"), ("asyncio", "asyncio")],
    ids=["uvloop's loop when the spec asks for it", "asyncio's own loop otherwise"],
)
def test_the_load_runs_on_the_loop_its_spec_names(name: str, module: str) -> None:
    seen: list[str] = []

    async def record() -> None:
        seen.append(await loop_class_name())

    loop_runner(name)(record())
    assert seen == [module]
