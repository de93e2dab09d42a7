"""Suite-wide: the manifest cache lives in a temporary directory, never in the user's ~/.cache; every test
has a node id of its own (pytest-xdist schedules by node id); Hypothesis' table of characters is built
before the first test."""

from __future__ import annotations

import os
from collections import Counter

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis builds its table of Unicode characters the first time a test draws text, about two seconds
    in a checkout without a `.hypothesis` directory (CI's fresh clone), and charges them to that test's first
    example: its health check failed the first run (`Input generation is slow`), never the next. Built here,
    before any test's clock starts (once per worker; then read from `.hypothesis`)."""
    try:
        from hypothesis.internal.charmap import charmap
    except ImportError:  # a Hypothesis without it: nothing to build ahead
        return
    charmap()


@pytest.fixture(autouse=True, scope="session")
def _private_manifest_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TENANCY_CACHE_DIR"] = str(tmp_path_factory.mktemp("manifest-cache"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis' `schema.parametrize()` makes one test per API operation, all under the same node id
    (`test_x`, not `test_x[GET /healthz]`). pytest-xdist schedules tests by node id, so with `-n 2` it would
    run one of them and drop the rest without a word: give each the name it has, operation included."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        base = getattr(item, "originalname", item.name)
        if counts[item.nodeid] > 1 and item.name.startswith(base + "[") and item.name.endswith("]"):
            params = item.name[len(base) + 1 : -1]
            if hasattr(item, "_id"):  # pytest ≥ 9: a structured node id
                item._id = item._id.with_params(params)
            else:
                item._nodeid = f"{item.nodeid}[{params}]"
    duplicates = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    assert not duplicates, f"tests sharing a node id (pytest-xdist would run one of each): {duplicates[:5]}"
    # The files of the longest tests (marked slow) first, those with the most slow tests before the others:
    # with -n 2 they start at once on the two workers and the short files fill in around them, instead of
    # one long file running alone at the end (addopts keep xdist to this order: --no-loadscope-reorder).
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: the order within a file, and among the rest, stays
