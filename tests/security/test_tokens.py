"""Tokens: revocation and expiry take effect at once on a running server (through the real commands), failed
authentications are throttled per client address and credential (a valid token from the same address keeps
working), idempotency keys are private to a token, and a scoped token cannot move its organization out from
under its parent."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tenancy_backend.api import AuthFailureLimiter
from tenancy_backend.errors import RateLimited
from tests.faults.harness import REPO, cli_env
from tests.builders import document
from tests.support import Server, create_token, start_server

TIME_LIMIT_S = 60.0
LIMIT = 5
PARALLEL = 8


def token_command(*args: str, db: str) -> str:
    """`tenancy token ...` as an operator types it; its standard output."""
    env = cli_env("unused", TENANCY_DB=db)
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "token", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("tokens") / "tenancy.db"
    with start_server(f"sqlite:///{db}", extra_args=("--auth-failure-limit", "0")) as srv:
        for name, parent in (("tk-a", None), ("tk-a-kid", "tk-a"), ("tk-a-grandkid", "tk-a-kid"), ("tk-b", None)):
            body = document("Organization", name, None, displayName=name, parent=parent, domains=[])
            assert requests.post(srv.url + "/v1/organizations", json=body, headers=srv.headers(), timeout=30).ok
        yield srv


def _get(server: Server, token: str, path: str = "/v1/organizations/tk-a") -> requests.Response:
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_revocation_takes_effect_at_once(server: Server, tmp_path: Path) -> None:
    token = token_command("create", "--organization", "tk-a", db=server.db_url)
    assert _get(server, token).status_code == 200
    token_command("revoke", token, db=server.db_url)
    refused = _get(server, token)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert token not in refused.text
    # The CLI says so in one line, no traceback.
    env = cli_env(server.url, token)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "o.yaml").write_text("")
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "import", "--organization", "tk-a", "--out", "x"],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "revoked" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    print("\nrevocation: the first request after `tenancy token revoke` answered 401 (no cache); the CLI said so")


EXPIRES_S = 5  # long enough for the CLI to exit and the first request to arrive on a loaded machine


def test_expiry(server: Server) -> None:
    token = token_command("create", "--organization", "tk-a", "--expires-in", f"{EXPIRES_S}s", db=server.db_url)
    created = time.monotonic()  # the token was made before this: sleeping from here passes its expiry
    assert _get(server, token).status_code == 200
    time.sleep(max(0.0, EXPIRES_S + 0.05 - (time.monotonic() - created)))
    refused = _get(server, token)
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    print(f"\nexpiry: a `--expires-in {EXPIRES_S}s` token answered 200, then 401 'expired' "
          f"{time.monotonic() - created:.1f} s after it was created")


def _guess() -> str:
    return "tnc_" + secrets.token_urlsafe(32)  # the shape of a real token: it is looked up, and fails


def test_a_valid_token_keeps_working_while_a_stranger_hammers_the_address(tmp_path: Path) -> None:
    """Everything comes from 127.0.0.1, as behind one NAT: a stranger sending bad tokens of every kind, in
    parallel, never locks out the valid token; only the credential failing over and over is throttled."""
    with start_server(f"sqlite:///{tmp_path / 'rl.db'}", extra_args=("--auth-failure-limit", str(LIMIT))) as srv:
        stuck = _guess()  # a client retrying one revoked or mistyped token
        never_counted = [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer nope"}]
        bad: list[dict[str, str]] = never_counted * (LIMIT * 4)  # over and over: they guess nothing
        bad += [{"Authorization": f"Bearer {stuck}"} for _ in range(LIMIT * 4)]
        bad += [{"Authorization": f"Bearer {_guess()}"} for _ in range(LIMIT * 20)]

        def bad_request(headers: dict[str, str]) -> tuple[str, int, requests.Response]:
            kind = "stuck" if stuck in headers.get("Authorization", "") else "other"
            response = requests.get(srv.url + "/v1/prices", headers=headers, timeout=30)
            return kind, response.status_code, response

        with ThreadPoolExecutor(PARALLEL) as pool:
            hammering = pool.map(bad_request, bad)
            valid = [_get(srv, srv.token, "/v1/prices").status_code for _ in range(30)]
            results = list(hammering)
        assert valid == [200] * 30
        others = Counter(status for kind, status, _ in results if kind == "other")
        assert others == {401: len(bad) - LIMIT * 4}, others  # no token, another scheme, a new guess: 401
        stuck_statuses = Counter(status for kind, status, _ in results if kind == "stuck")
        # Requests in flight when the limit is reached were already past the check: at most one per thread.
        assert LIMIT <= stuck_statuses[401] <= LIMIT + PARALLEL, stuck_statuses
        assert stuck_statuses[401] + stuck_statuses[429] == LIMIT * 4, stuck_statuses
        for _, status, response in results:
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
        throttled = _get(srv, stuck, "/v1/prices")
        retry_after = int(throttled.headers["Retry-After"])
        assert throttled.status_code == 429 and 1 <= retry_after <= 60
        assert "failed to authenticate" in throttled.json()["detail"] and stuck not in throttled.text
        assert _get(srv, srv.token, "/v1/prices").status_code == 200
    print(f"\nfailed authentications: {len(bad)} bad requests from one address in parallel, 30 valid ones all 200; "
          f"the token failing over and over: {LIMIT} × 401, then 429 (Retry-After {retry_after} s)")


def test_the_limiter_keeps_pairs_apart_and_forgets() -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1", "tnc_a")
        limiter.failed("10.0.0.1", "tnc_a")
    with pytest.raises(RateLimited) as info:
        limiter.check("10.0.0.1", "tnc_a")
    assert info.value.retry_after == 60 and "tnc_a" not in str(info.value)
    limiter.check("10.0.0.1", "tnc_b")  # another credential from the same address is not affected
    limiter.check("10.0.0.2", "tnc_a")  # nor the same credential from another address
    now[0] += 59.0
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1", "tnc_a")
    now[0] += 1.5  # the oldest failures leave the window
    limiter.check("10.0.0.1", "tnc_a")
    for i in range(AuthFailureLimiter.MAX_PAIRS + 50):  # memory stays bounded under a spray of guesses
        limiter.failed("10.0.0.3", f"tnc_{i}")
    assert len(limiter._failures) == AuthFailureLimiter.MAX_PAIRS
    assert all("tnc_" not in repr(key) for key in limiter._failures)  # digests, not tokens


def test_every_token_made_has_the_shape_the_api_checks_before_any_lookup(tmp_path: Path) -> None:
    from tenancy_backend.service import Service
    from tenancy_backend.tokens import TOKEN_PATTERN

    service = Service(f"sqlite:///{tmp_path / 'shape.db'}")
    try:
        tokens = [service.create_token() for _ in range(200)]
    finally:
        service.close()
    assert all(re.match(TOKEN_PATTERN, t) for t in tokens)


def test_idempotency_keys_are_private_to_a_token(server: Server) -> None:
    """Another tenant reusing a key gets its own answer, never the first tenant's response."""
    a, b = create_token(server.db_url, "tk-a"), create_token(server.db_url, "tk-b")
    key = {"Idempotency-Key": "shared-key-1"}
    body = {"amount": "1.00"}
    first = requests.post(server.url + "/v1/organizations/tk-a/deposits", json=body,
                          headers={"Authorization": f"Bearer {a}", **key}, timeout=30)
    assert first.status_code == 200
    other = requests.post(server.url + "/v1/organizations/tk-a/deposits", json=body,
                          headers={"Authorization": f"Bearer {b}", **key}, timeout=30)
    assert other.status_code == 404 and first.json()["metadata"]["uid"] not in other.text
    own = requests.post(server.url + "/v1/organizations/tk-b/deposits", json=body,
                        headers={"Authorization": f"Bearer {b}", **key}, timeout=30)
    assert own.status_code == 200 and own.json()["metadata"]["name"] == "tk-b"


@pytest.mark.parametrize("parent", [None, "tk-b", "tk-a-grandkid"], ids=["to-top-level", "into-another-tree", "cycle"])
def test_a_scoped_token_cannot_move_its_organization_out(server: Server, parent: str | None) -> None:
    token = create_token(server.db_url, "tk-a-kid")
    current = _get(server, token, "/v1/organizations/tk-a-kid").json()
    assert current["spec"]["parent"] == "tk-a"
    moved = {**current, "spec": {**current["spec"], "parent": parent}}
    response = requests.put(server.url + "/v1/organizations/tk-a-kid", json=moved,
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code in (404, 409, 422), response.text
    after = _get(server, server.token, "/v1/organizations/tk-a-kid").json()
    assert after["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    assert after["spec"]["parent"] == "tk-a"
