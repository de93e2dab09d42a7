"""Every security test runs under a time limit (module constant TIME_LIMIT_S, default 120 s)."""

from tests.faults.harness import bounded_in_time  # noqa: F401  (an autouse fixture)
