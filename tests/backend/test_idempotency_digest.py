"""The digest an idempotency key is stored with: masking skipped when no password can be inside, with the
same digest as masking everything (stored digests must still match after an upgrade)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tenancy_backend.idempotency import fingerprint


def _masked_everywhere(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<secret>" if k == "password" else _masked_everywhere(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_everywhere(v) for v in value]
    return value


def _reference(payload: Any) -> str:
    data = json.dumps(["changeset", "", None, None, _masked_everywhere(payload)], sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


_keys = st.sampled_from(["password", "spec", "email", "name", "labels"]) | st.text(max_size=8)
_payloads = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.just("password"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_payloads)
def test_the_digest_is_that_of_the_masked_request(payload):
    assert fingerprint("changeset", "", None, None, payload) == _reference(payload)


def test_a_password_anywhere_is_masked_and_changes_nothing_else():
    with_one = [{"op": "create", "document": {"spec": {"email": "a@b.example", "password": "s3cret-Pw-1"}}}]
    other = [{"op": "create", "document": {"spec": {"email": "a@b.example", "password": "another-Pw-2"}}}]
    assert fingerprint("changeset", "", None, None, with_one) == fingerprint("changeset", "", None, None, other)
    assert fingerprint("changeset", "", None, None, [{"n": 2**70}]) == _reference([{"n": 2**70}])  # orjson refuses
    assert fingerprint("changeset", "", None, None, ["lone \ud800"]) == _reference(["lone \ud800"])
