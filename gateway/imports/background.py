"""A generator run in a process of its own, read from this one: two cores for one import.

The child comes from a fork server (`multiprocessing`'s "forkserver" start method): a clean
process started once, with the importer's modules already imported, that forks a child per
call in a few milliseconds. The child inherits none of this process's database connections or
threads, so it can neither close a connection under us nor deadlock on a lock a thread held.
As with any use of `multiprocessing`, a script that calls this must keep its top-level code
under `if __name__ == "__main__":` (the `consulta` command and pytest do).

Items cross a pipe, pickled, one at a time: the child blocks while one item is on its way and
the next is being made, so at most about two items are in memory whatever the input's size.
An exception the generator raises is raised here; when this side stops early (an error, a
refusal, Ctrl-C) the child is terminated.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import traceback
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import TypeVar

_A = TypeVar("_A")
_T = TypeVar("_T")
# Imported once by the fork server, so that a child starts with them already loaded. Fixed
# here rather than taken from the first caller: the server is started once per process.
PRELOADED = ["gateway.imports.checked_rows"]


class ChildError(RuntimeError):
    """The child process raised an exception that cannot be sent back as itself, or died."""


def run_elsewhere(produce: Callable[[_A], Iterator[_T]], argument: _A) -> Generator[_T, None, None]:
    """`produce(argument)`, run in a child process; close the iterator to stop the child early.

    `produce` must be a module-level function, and `argument` and every item picklable.
    """
    context: BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOADED)  # once the server runs, a no-op
    else:  # Windows: a fresh interpreter per child, slower to start but as clean
        context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(produce, argument, sender), daemon=True)
    child.start()
    sender.close()  # ours: the pipe reports EOF once the child's copy closes too
    try:
        yield from _received(receiver)
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _received(receiver: Connection) -> Iterator[_T]:
    while True:
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise ChildError("the child process stopped before it finished") from None
        if kind == "item":
            yield payload
        elif kind == "end":
            return
        elif kind == "raised":
            raise payload
        else:
            raise ChildError(f"the child process failed:\n{payload}")


def _child(produce: Callable[[_A], Iterator[_T]], argument: _A, sender: Connection) -> None:
    with sender:
        try:
            for item in produce(argument):
                sender.send(("item", item))
            sender.send(("end", None))
        except (BrokenPipeError, KeyboardInterrupt):
            return  # the parent stopped reading, or was interrupted too: it knows why
        except Exception as exc:
            with contextlib.suppress(BrokenPipeError):
                sender.send(_failure(exc))


def _failure(exc: Exception) -> tuple[str, object]:
    """The exception itself when it survives pickling (ours do), else its traceback as text."""
    try:
        # Our own exception, pickled and read back in our own process: nothing untrusted.
        pickle.loads(pickle.dumps(exc))  # noqa: S301
    except Exception:  # noqa: BLE001 - whatever fails, the text still tells what happened
        return "failed", "".join(traceback.format_exception(exc))
    return "raised", exc
