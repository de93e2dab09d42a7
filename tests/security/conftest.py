"""Every security test runs under a time limit: module constant TIME_LIMIT_S (default 120) CPU seconds of
the test's process tree, and a wall-clock guard of 3x that (tests/faults/harness.py, time_limit)."""

from tests.faults.harness import bounded_in_time  # noqa: F401  (an autouse fixture)
