"""Suite-wide: the manifest cache lives in a temporary directory, never in the user's ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_manifest_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TENANCY_CACHE_DIR"] = str(tmp_path_factory.mktemp("manifest-cache"))
