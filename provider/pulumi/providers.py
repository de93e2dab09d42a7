"""The dynamic resource provider behind every Pulumi resource of this package: one class, one instance per kind.

Pulumi pickles the provider into each resource's state (`__provider`) and unpickles it in the
`pulumi-python` plugin process. This module is importable (never `__main__`), so the pickle holds only a
reference to the class and the kind's name: no client, no backend URL, no token (`__getstate__`). The
backend and the token arrive in that process through `configure()` (config `tenancy:backend`, secret
`tenancy:token`; else `TENANCY_BACKEND` / `TENANCY_TOKEN`; else the CLI's default backend), and the client is
built lazily, once per backend, in a module-level cache.

Deciding is the CLI's: `diff()` calls `provider.diff.diff` and create/update send `provider.apply.payload`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from provider.apply import payload
from provider.client import Client
from provider.connect import DEFAULT_BACKEND, connect
from provider.errors import ConfigError, NotFound, PlanError, TenancyError
from tenancy_kinds import KINDS, Kind, ResourceKey, to_snake
from tenancy_kinds.defaults import redact_url
from provider.diff import diff
from provider.operations import Create, Delete, Replace
from provider.plan import refusals
from provider.pulumi import properties as P

CONFIG_BACKEND = "tenancy:backend"
CONFIG_TOKEN = "tenancy:token"

T = TypeVar("T")

_clients: dict[tuple[str, str], Client] = {}
_clients_lock = threading.Lock()


def client_for(backend: str, token: str | None) -> Client:
    """One client per (backend, token) in this process, built on first use."""
    cache_key = (backend, hashlib.sha256((token or "").encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = _clients[cache_key] = connect(backend, token)
        return client


def _plainly(method: Callable[..., T]) -> Callable[..., T]:
    """A TenancyError leaves with its own message and no chained causes: the backend's words, no noise."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except TenancyError as e:
            error = e
        error.__cause__ = error.__context__ = None
        error.__suppress_context__ = True
        raise error.with_traceback(None)

    return wrapper


class TenancyProvider(ResourceProvider):
    """CRUD for one kind of the table, against the tenancy backend."""

    # The pickle holds no secret: do not mark `__provider` secret, so that state and diffs stay readable.
    serialize_as_secret_always = False

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind_name = kind
        self._backend: str | None = None
        self._token: str | None = None

    # --- pickling: the kind, nothing else -----------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"kind_name": self.kind_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.kind_name = state["kind_name"]
        self._backend = None
        self._token = None

    def __repr__(self) -> str:
        return f"TenancyProvider({self.kind_name!r})"

    # --- configuration --------------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        return KINDS[self.kind_name]

    def configure(self, req: ConfigureRequest) -> None:
        self._backend = req.config.get(CONFIG_BACKEND) or None
        self._token = req.config.get(CONFIG_TOKEN) or None

    def settings(self) -> tuple[str, str | None]:
        """(backend URL, token): Pulumi config first, then the CLI's environment variables and default."""
        backend = self._backend or os.environ.get("TENANCY_BACKEND") or DEFAULT_BACKEND
        token = self._token or os.environ.get("TENANCY_TOKEN") or None
        return backend, token

    @property
    def client(self) -> Client:
        backend, token = self.settings()
        if backend.startswith(("http://", "https://")) and not token:
            raise ConfigError(
                f"the backend {redact_url(backend)} needs an API token: `pulumi config set --secret tenancy:token "
                "<token>` (or set TENANCY_TOKEN); create one with `tenancy token create` on the backend's machine"
            )
        return client_for(backend, token)

    # --- the lifecycle ----------------------------------------------------------------------------------

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {k: v for k, v in news.items() if k != "__provider"}
        failures = [CheckFailure(f.property, f.reason) for f in P.check(self.kind, inputs)]
        return CheckResult(news, failures)

    @_plainly
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        unknown = sorted(k for k in P.unknown_properties(news) if k != "__provider")
        moved = [p for p in P.IDENTITY if p in news and p not in unknown and news.get(p) != olds.get(p)]
        if unknown:
            # A preview with values not known yet: the change is real, and it replaces if identity may move.
            maybe = [p for p in unknown if p in P.IDENTITY or p in P.immutable_properties(self.kind)]
            return DiffResult(changes=True, replaces=moved + maybe, delete_before_replace=True)
        if moved:  # another name is another resource: this one is deleted (refused if protected)
            live = P.live_document(self.kind, olds)
            problems = refusals([Delete(ResourceKey.of(live), None, live, ())])
            if problems:
                raise PlanError(problems)
            return DiffResult(changes=True, replaces=moved, delete_before_replace=True)
        op = diff(self.kind, P.document(self.kind, news), P.live_document(self.kind, olds))
        if op is None:
            return DiffResult(changes=False, replaces=[], delete_before_replace=True)
        problems = refusals([op])  # a preview refuses what the CLI's plan refuses (a protected replace)
        if problems:
            raise PlanError(problems)
        replaces = [to_snake(f) for f in op.immutable] if isinstance(op, Replace) else []
        return DiffResult(changes=True, replaces=replaces, delete_before_replace=True)

    @_plainly
    def create(self, props: dict[str, Any]) -> CreateResult:
        desired = P.document(self.kind, props)
        op = diff(self.kind, desired, None)
        assert isinstance(op, Create)
        created = self.client.create(payload(op, None, self._secrets(props)))
        outs = P.outputs(self.kind, created)
        return CreateResult(str(outs["uid"]), outs)

    @_plainly
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        key, uid = self._locate(id_, props)
        current = self.client.get(key)
        if current is None or (uid and (current.get("metadata") or {}).get("uid") != uid):
            return ReadResult(None, {})  # gone (or someone else's resource now holds the name)
        outs = P.outputs(self.kind, current)
        # An import (no outputs yet) also learns the inputs; a refresh keeps the program's own.
        inputs = P.inputs_of(self.kind, outs) if not props.get("uid") else None
        return ReadResult(str(outs["uid"]), outs, inputs)

    @_plainly
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        live = P.live_document(self.kind, olds)
        op = diff(self.kind, P.document(self.kind, news), live)
        if op is None:  # nothing the backend holds differs (say, a new password without a new version)
            return UpdateResult({k: v for k, v in olds.items() if k != "__provider"})
        if isinstance(op, Replace):
            raise TenancyError(f"{op.key}: {', '.join(op.immutable)} cannot change in place; it needs a replace")
        updated = self.client.update(payload(op, None, self._secrets(news)), if_match=op.live_version)
        return UpdateResult(P.outputs(self.kind, updated))

    @_plainly
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            self.client.delete(self._locate(id_, props)[0], if_match=props.get("resource_version"))
        except NotFound:
            pass  # already gone: the goal of a delete

    # --- helpers ----------------------------------------------------------------------------------------

    def _secrets(self, props: dict[str, Any]) -> dict[str, str]:
        return {f: str(props[p]) for f in self.kind.sensitive if props.get(p := to_snake(f)) is not None}

    def _locate(self, id_: str, props: dict[str, Any]) -> tuple[ResourceKey, str | None]:
        """The key to read and the uid expected there (None: any).

        A refresh or a delete has the outputs (key and uid). An import has the program's inputs and the id
        given to `import_`: a key, `Kind/organization/name`, `organization/name` or, for an Organization,
        its name; or the uid, when the program declares the name (and organization).
        """
        declared = self._declared_key(props)
        if props.get("uid") and declared is not None:
            return declared, str(props["uid"])
        parsed = self._parse_key(id_, props)
        if parsed is not None:
            return parsed, None
        if declared is not None:
            return declared, id_
        where = "ORGANIZATION/NAME" if self.kind.scoped else "NAME"
        raise TenancyError(f"cannot find {self.kind_name} {id_!r}: import it by key, `{self.kind_name}/{where}`")

    def _declared_key(self, props: dict[str, Any]) -> ResourceKey | None:
        if not props.get("name") or (self.kind.scoped and not props.get("organization")):
            return None
        organization = str(props.get("organization") or "") if self.kind.scoped else ""
        return ResourceKey(self.kind_name, organization, str(props["name"]))

    def _parse_key(self, id_: str, props: dict[str, Any]) -> ResourceKey | None:
        parts = id_.split("/")
        if parts[0] == self.kind_name and len(parts) > 1:
            parts = parts[1:]
        if self.kind.scoped:
            return ResourceKey(self.kind_name, parts[0], parts[1]) if len(parts) == 2 else None
        bare = "/" not in id_
        if len(parts) == 1 and (not bare or props.get("name") in (None, id_)):
            return ResourceKey(self.kind_name, "", parts[0])
        return None


def provider_for(kind: str) -> TenancyProvider:
    return TenancyProvider(kind)
