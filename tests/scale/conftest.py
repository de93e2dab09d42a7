"""Scale tests: the benchmark's smoke run, bulk paths equal to per-resource paths, atomic apply, workers."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests` and `benchmarks` are not installed; make them importable
    sys.path.insert(0, str(REPO))
