"""Plays the Pulumi engine against the real dynamic provider plugin, over gRPC.

The Pulumi CLI cannot run here, so this starts what it would start, `python -u -m pulumi.dynamic` (the
`pulumi-resource-pulumi-python` plugin), reads the port the plugin prints on its first line, and sends
the requests the engine sends, built the way the engine and the SDK build them:

- `Configure` with the stack's configuration as namespaced keys in `args` (`tenancy:backend`, and
  `tenancy:token` as a secret), the form the engine uses for dynamic providers;
- resource properties serialized by `pulumi.runtime.rpc.serialize_properties`, with the provider pickled
  into `__provider` by `pulumi.dynamic.dynamic.serialize_provider` inside the SDK's serialization
  context, as `pulumi.dynamic.Resource.__init__` does. Secrets are sent unwrapped, as the engine does for
  a provider that does not accept secrets (the dynamic provider answers `acceptSecrets: false`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime._serialization import _serialize
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from provider.pulumi.providers import TenancyProvider

PROVIDER_KEY = "__provider"


def pickled_provider(kind: str) -> str:
    """`__provider` exactly as `pulumi.dynamic.Resource.__init__` computes it."""
    serialized, contains_secrets = _serialize(True, serialize_provider, TenancyProvider(kind))
    assert not contains_secrets
    return serialized


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: v for k, v in rpc.deserialize_properties(struct, True).items() if k != PROVIDER_KEY}


def secret(value: Any) -> dict[str, Any]:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


@dataclass
class Created:
    id: str
    outs: dict[str, Any]
    raw: bytes  # the response as sent on the wire


class Engine:
    """One dynamic provider plugin process and the engine's side of its gRPC conversation."""

    def __init__(self, cwd: str, env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=cwd,
            env={**os.environ, **(env or {}), "PULUMI_PROJECT": "pulumi-demo"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().decode().strip()
        if not first.isdigit():
            self.stop()
            raise RuntimeError(f"the dynamic provider did not print its port: {first!r}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{first}")
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.pickles: dict[str, str] = {}

    def stop(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # --- the engine's calls ----------------------------------------------------------------------------

    def configure(self, config: dict[str, Any]) -> provider_pb2.ConfigureResponse:
        request = provider_pb2.ConfigureRequest(args=to_struct(config), acceptSecrets=True, acceptResources=True)
        return self.stub.Configure(request)

    def _props(self, kind: str, props: dict[str, Any]) -> struct_pb2.Struct:
        if kind not in self.pickles:
            self.pickles[kind] = pickled_provider(kind)
        return to_struct({**props, PROVIDER_KEY: self.pickles[kind]})

    @staticmethod
    def urn(kind: str, name: str) -> str:
        return f"urn:pulumi:dev::pulumi-demo::pulumi-python:dynamic/tenancy:{kind}::{name}"

    def check(
        self, kind: str, name: str, news: dict[str, Any], olds: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        request = provider_pb2.CheckRequest(
            urn=self.urn(kind, name), olds=self._props(kind, olds or {}), news=self._props(kind, news)
        )
        response = self.stub.Check(request)
        return from_struct(response.inputs), [(f.property, f.reason) for f in response.failures]

    def create(self, kind: str, name: str, props: dict[str, Any]) -> Created:
        response = self.stub.Create(
            provider_pb2.CreateRequest(urn=self.urn(kind, name), properties=self._props(kind, props))
        )
        return Created(response.id, from_struct(response.properties), response.SerializeToString())

    def diff(
        self, kind: str, name: str, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> provider_pb2.DiffResponse:
        request = provider_pb2.DiffRequest(
            id=id_, urn=self.urn(kind, name), olds=self._props(kind, olds), news=self._props(kind, news)
        )
        return self.stub.Diff(request)

    def update(self, kind: str, name: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        request = provider_pb2.UpdateRequest(
            id=id_, urn=self.urn(kind, name), olds=self._props(kind, olds), news=self._props(kind, news)
        )
        return from_struct(self.stub.Update(request).properties)

    def read(
        self, kind: str, name: str, id_: str, outs: dict[str, Any] | None, inputs: dict[str, Any] | None = None
    ) -> provider_pb2.ReadResponse:
        request = provider_pb2.ReadRequest(
            id=id_,
            urn=self.urn(kind, name),
            properties=self._props(kind, outs) if outs is not None else None,
            inputs=self._props(kind, inputs) if inputs is not None else None,
        )
        return self.stub.Read(request)

    def delete(self, kind: str, name: str, id_: str, outs: dict[str, Any]) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(id=id_, urn=self.urn(kind, name), properties=self._props(kind, outs))
        )
