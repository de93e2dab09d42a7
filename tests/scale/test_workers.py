"""Several `tenancy serve` processes on one PostgreSQL database serve one fleet consistently.

Two servers (separate processes, separate ports) share a database: an idempotency key used on both
creates one resource, an ETag read on one is enforced by the other (412), and concurrent creates of the
same address on both leave exactly one winner (the other gets 409). `--workers 2` serves the same API.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.builders import org, user
from tests.support import Server, new_pg_database, start_server

ORG = org("acme", plan="pro")


def _user(name: str, email: str) -> dict:
    return user("acme", name, email=email, role="collaborator")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Server, Server]]:
    database = new_pg_database()
    with start_server(database) as first, start_server(database) as second:
        second.token = first.token
        response = requests.post(f"{first.url}/v1/organizations", json=ORG, headers=first.headers(), timeout=30)
        assert response.status_code == 201, response.text
        yield first, second


USERS = "/v1/organizations/acme/users"


def test_an_idempotency_key_used_on_both_processes_creates_one_resource(pair: tuple[Server, Server]) -> None:
    first, second = pair
    key = str(uuid.uuid4())
    body = _user("idem", "idem@acme.example")
    answers = [
        requests.post(
            f"{server.url}{USERS}", json=body, headers={**server.headers(), "Idempotency-Key": key}, timeout=30
        )
        for server in (first, second, first)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    assert len({a.json()["metadata"]["uid"] for a in answers}) == 1
    listed = requests.get(f"{second.url}{USERS}", headers=second.headers(), timeout=30).json()["items"]
    assert [u["metadata"]["name"] for u in listed].count("idem") == 1


def test_an_etag_read_on_one_process_is_enforced_by_the_other(pair: tuple[Server, Server]) -> None:
    first, second = pair
    created = requests.post(
        f"{first.url}{USERS}", json=_user("etag", "etag@acme.example"), headers=first.headers(), timeout=30
    )
    assert created.status_code == 201, created.text
    etag = created.headers["ETag"]
    document = created.json()
    document["spec"]["displayName"] = "Changed on the second"
    changed = requests.put(
        f"{second.url}{USERS}/etag", json=document, headers={**second.headers(), "If-Match": etag}, timeout=30
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] != etag
    document["spec"]["displayName"] = "Stale write on the first"
    stale = requests.put(
        f"{first.url}{USERS}/etag", json=document, headers={**first.headers(), "If-Match": etag}, timeout=30
    )
    assert stale.status_code == 412, stale.text
    gone = requests.delete(f"{first.url}{USERS}/etag", headers={**first.headers(), "If-Match": etag}, timeout=30)
    assert gone.status_code == 412, gone.text
    now = requests.get(f"{first.url}{USERS}/etag", headers=first.headers(), timeout=30).json()
    assert now["spec"]["displayName"] == "Changed on the second"


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_creates_of_one_address_on_both_processes_leave_one_winner(
    pair: tuple[Server, Server], round_: int
) -> None:
    first, second = pair
    email = f"race{round_}@acme.example"
    codes: dict[str, int] = {}
    start = threading.Barrier(2)

    def create(server: Server, name: str) -> None:
        start.wait()
        response = requests.post(f"{server.url}{USERS}", json=_user(name, email), headers=server.headers(), timeout=30)
        codes[name] = response.status_code

    threads = [
        threading.Thread(target=create, args=(s, f"race{round_}{side}")) for s, side in zip(pair, "ab", strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [201, 409], codes
    listed = requests.get(f"{first.url}{USERS}", headers=first.headers(), params={"limit": 1000}, timeout=30).json()[
        "items"
    ]
    assert [u["spec"]["email"] for u in listed].count(email) == 1


def test_workers_flag_serves_one_fleet_from_several_processes() -> None:
    with start_server(new_pg_database(), workers=2) as server:
        assert (
            requests.post(f"{server.url}/v1/organizations", json=ORG, headers=server.headers(), timeout=30).status_code
            == 201
        )
        session = requests.Session()
        key = str(uuid.uuid4())
        answers = []
        for _ in range(6):  # new connections land on either worker
            session.close()
            answers.append(
                session.post(
                    f"{server.url}{USERS}",
                    json=_user("w", "w@acme.example"),
                    headers={**server.headers(), "Idempotency-Key": key},
                    timeout=30,
                )
            )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["metadata"]["uid"] for a in answers}) == 1
        plain = requests.post(
            f"{server.url}{USERS}", json=_user("w2", "w@acme.example"), headers=server.headers(), timeout=30
        )
        assert plain.status_code == 409, plain.text
