"""scim2-client over real HTTP with `requests` (scim2-client ships httpx2 and in-process engines; the
locks hold requests): what drives scim2-tester against a running `tenancy serve`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from scim2_client import BaseSyncSCIMClient
from scim2_client.errors import RequestNetworkException

TIMEOUT_S = 30


class RequestsSCIMClient(BaseSyncSCIMClient):
    """A synchronous SCIM client on a requests Session: `base_url` is an organization's SCIM root."""

    def __init__(self, base_url: str, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/") + "/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _absolute(self, url: str) -> str:
        return urljoin(self.base_url, url.lstrip("/"))

    def _stays_under_base_url(self, endpoint: str) -> bool:
        target, base = urlsplit(self._absolute(endpoint)), urlsplit(self.base_url)
        return (target.scheme, target.netloc) == (base.scheme, base.netloc) and target.path.startswith(base.path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, self._absolute(url), timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as e:
            error = RequestNetworkException()
            error.add_note(str(e))
            raise error from e
