"""A call run in a forked process while this one goes on with other work: for CPU-bound work over a large
input already in memory (the fork shares it: nothing is copied or pickled but the answer). On two cores a
plan of 1,000,000 resources judges its manifests in a child while it compares them with the backend here.

Wherever there is no second process (no `fork`, one core, a sandbox's limit), or the child fails in any way
(killed, out of memory, an exception, an answer that does not pickle), the call runs here in `result()`,
where its exception, if any, is raised as itself: the answer is the same either way, only sooner.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_FORK = "fork" in multiprocessing.get_all_start_methods()


class Aside(Generic[T]):
    """`fn(*args)`, started in a forked child now when `fork` is True (and this machine can), else run here
    when `result()` is asked."""

    def __init__(self, fn: Callable[..., T], *args: Any, fork: bool = True) -> None:
        self._fn = fn
        self._args = args
        self._child: tuple[Any, Connection] | None = None
        if not (fork and _FORK and (os.cpu_count() or 1) >= 2):
            return
        try:
            context = multiprocessing.get_context("fork")
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_answer, args=(send, fn, args), daemon=True)
            process.start()
        except Exception:  # noqa: BLE001 - no second process here: the call runs in result()
            return
        send.close()
        self._child = (process, receive)

    @property
    def forked(self) -> bool:
        return self._child is not None

    def result(self) -> T:
        """The call's value: the child's answer, else (no child, or it failed) the call made here."""
        if self._child is not None:
            process, receive = self._child
            self._child = None
            try:
                answered, value = receive.recv()
            except Exception:  # noqa: BLE001 - the child died or its answer did not unpickle
                answered, value = False, None
            finally:
                receive.close()
                process.join()
            if answered:
                return value  # type: ignore[no-any-return]
        return self._fn(*self._args)


def _answer(send: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """In the child: the call's value, or a refusal (the parent then makes the call itself and meets the
    exception where it belongs)."""
    try:
        answer: tuple[bool, Any] = (True, fn(*args))
    except BaseException:  # noqa: BLE001 - any failure: the parent calls again
        answer = (False, None)
    try:
        send.send(answer)
    except Exception:  # noqa: BLE001 - an answer that does not pickle: the parent calls again
        send.send((False, None))
    finally:
        send.close()
