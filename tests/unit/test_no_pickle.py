"""No pickle on the queues: every RQ object our code builds is given the JSON serializer.

RQ's default serializer is pickle, and unpickling job data read from Redis runs whatever the
data says. So a Queue, Worker or Job made anywhere without `serializer=JSONSerializer` would read
or write pickle the day something is enqueued or fetched through it. This walks the code for
every such call, our own subclasses of RQ's classes included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["gateway", "workers"]  # the code that runs in production
RQ_CLASSES = {"Queue", "Worker", "SimpleWorker"}
# The class methods that read jobs or workers back from Redis.
RQ_READS = {"Job.fetch", "Job.fetch_many", "Job.create", "Worker.all", "Worker.find_by_key"}


def called_name(call: ast.Call) -> str:
    """`Queue` for Queue(...), `Job.fetch` for Job.fetch(...), "" for anything else."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def modules_using_rq() -> dict[str, ast.Module]:
    """Every module under SOURCES that imports from rq, by path."""
    found = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            if any(
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rq")
                for node in ast.walk(tree)
            ):
                found[str(path.relative_to(ROOT))] = tree
    return found


def our_subclasses(modules: dict[str, ast.Module]) -> set[str]:
    """Classes of ours built on RQ's (a worker with its own stop handling, say)."""
    return {
        node.name
        for tree in modules.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id in RQ_CLASSES for base in node.bases)
    }


def rq_calls() -> list[tuple[str, ast.Call]]:
    modules = modules_using_rq()
    classes = RQ_CLASSES | our_subclasses(modules)
    wanted = classes | RQ_READS | {f"{name}.all" for name in classes}
    return [
        (f"{where}:{node.lineno}", node)
        for where, tree in modules.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and called_name(node) in wanted
    ]


def serializer_of(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "serializer":
            return ast.unparse(keyword.value)
    return None


def test_the_walk_finds_the_queues_and_workers_we_know_of() -> None:
    places = [place for place, _ in rq_calls()]
    assert any(p.startswith("workers/runtime.py") for p in places)  # every queue is made here
    assert any(p.startswith("workers/main.py") for p in places)  # the worker process
    assert any(p.startswith("gateway/ops/jobs.py") for p in places)  # the console's job views


@pytest.mark.parametrize("call", [pytest.param(call, id=place) for place, call in rq_calls()])
def test_every_rq_queue_worker_and_job_read_uses_the_json_serializer(call: ast.Call) -> None:
    assert serializer_of(call) == "JSONSerializer", ast.unparse(call)
