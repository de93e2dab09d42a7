"""A call run aside in a forked child (provider.aside): the same answer as the call made here, whatever
happens to the child; only the place it is computed differs."""

from __future__ import annotations

import os
from typing import Any

import pytest

from provider.aside import Aside


def _where_and_what(numbers: list[int]) -> tuple[int, int]:
    return os.getpid(), sum(numbers)


def test_the_call_runs_in_a_child_sharing_what_this_process_holds() -> None:
    numbers = list(range(100_000))  # not pickled: the fork shares it
    aside = Aside(_where_and_what, numbers)
    assert aside.forked
    pid, total = aside.result()
    assert pid != os.getpid()
    assert total == sum(numbers)


def test_without_fork_the_call_is_made_here_when_its_result_is_asked() -> None:
    calls: list[int] = []
    aside = Aside(lambda: calls.append(os.getpid()) or "done", fork=False)
    assert not aside.forked and calls == []
    assert aside.result() == "done"
    assert calls == [os.getpid()]


def test_an_exception_in_the_child_is_raised_here_as_itself() -> None:
    calls: list[int] = []

    def refuse() -> None:
        calls.append(os.getpid())  # the child's append stays in the child
        raise ValueError("no such organization: acme")

    aside = Aside(refuse)
    with pytest.raises(ValueError, match="no such organization: acme"):
        aside.result()
    assert calls == [os.getpid()], "the call was made again here, where its exception belongs"


def test_a_child_that_dies_is_answered_here() -> None:
    parent = os.getpid()

    def die_in_the_child() -> int:
        if os.getpid() != parent:
            os._exit(9)  # as if killed (out of memory, a signal)
        return 42

    assert Aside(die_in_the_child).result() == 42


def test_an_answer_that_cannot_cross_to_this_process_is_computed_here() -> None:
    parent = os.getpid()

    def unpicklable() -> Any:
        pid = os.getpid()
        return lambda: pid  # a closure does not pickle

    made = Aside(unpicklable).result()
    assert made() == parent
