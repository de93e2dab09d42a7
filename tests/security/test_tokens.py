"""Tokens: revocation and expiry take effect at once on a running server (through the real commands), failed
authentications are rate limited per client address, idempotency keys are private to a token, and a scoped
token cannot move its organization out from under its parent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tenancy_backend.api import AuthFailureLimiter
from tenancy_backend.errors import RateLimited
from tests.faults.harness import REPO, cli_env
from tests.security.world import doc
from tests.support import Server, create_token, start_server

TIME_LIMIT_S = 60.0
LIMIT = 5


def token_command(*args: str, db: str) -> str:
    """`tenancy token ...` as an operator types it; its standard output."""
    env = cli_env("unused", TENANCY_DB=db)
    proc = subprocess.run([sys.executable, "-m", "provider.cli", "token", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("tokens") / "tenancy.db"
    with start_server(f"sqlite:///{db}", extra_args=("--auth-failure-limit", "0")) as srv:
        for name, parent in (("tk-a", None), ("tk-a-kid", "tk-a"), ("tk-a-grandkid", "tk-a-kid"), ("tk-b", None)):
            body = doc("Organization", name, None, displayName=name, parent=parent, domains=[])
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
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "revoked" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    print("\nrevocation: the first request after `tenancy token revoke` answered 401 (no cache); the CLI said so")


def test_expiry(server: Server) -> None:
    token = token_command("create", "--organization", "tk-a", "--expires-in", "2s", db=server.db_url)
    created = time.monotonic()
    assert _get(server, token).status_code == 200
    time.sleep(max(0.0, 2.05 - (time.monotonic() - created)))
    refused = _get(server, token)
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    print(f"\nexpiry: a `--expires-in 2s` token answered 200, then 401 'expired' "
          f"{time.monotonic() - created:.1f} s after it was created")


def test_failed_authentications_are_rate_limited_per_address(tmp_path: Path) -> None:
    with start_server(f"sqlite:///{tmp_path / 'rl.db'}", extra_args=("--auth-failure-limit", str(LIMIT))) as srv:
        statuses = []
        for i in range(LIMIT + 3):
            statuses.append(_get(srv, f"tnc_guess{i}", "/v1/prices").status_code)
        assert statuses == [401] * LIMIT + [429] * 3, statuses
        blocked = _get(srv, srv.token, "/v1/prices")  # the address is blocked, whatever it sends
        assert blocked.status_code == 429
        retry_after = int(blocked.headers["Retry-After"])
        assert 1 <= retry_after <= 60 and "too many failed authentications" in blocked.json()["detail"]
        assert requests.get(srv.url + "/healthz", timeout=10).status_code == 200  # no token, no limit
    print(f"\nfailed authentications: {LIMIT} answered 401, then 429 (Retry-After {retry_after} s) for the address")


def test_the_limiter_forgets_and_keeps_addresses_apart() -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    with pytest.raises(RateLimited) as info:
        limiter.check("10.0.0.1")
    assert info.value.retry_after == 60
    limiter.check("10.0.0.2")  # another address is not affected
    now[0] += 59.0
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1")
    now[0] += 1.5  # the oldest failures leave the window
    limiter.check("10.0.0.1")
    for i in range(AuthFailureLimiter.MAX_ADDRESSES + 50):  # memory stays bounded under a spray of addresses
        limiter.failed(f"addr-{i}")
    assert len(limiter._failures) == AuthFailureLimiter.MAX_ADDRESSES  # noqa: SLF001


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
