"""Many live documents in little memory: each kept as its JSON text beside its key, decoded when read.

A document of the live state decoded into dicts takes about 2.3 KB (five dicts, two dozen values) for
600 bytes of JSON; an export of 1,000,000 resources took 2.3 GB that way. `Documents` keeps the JSON
(one bytes object each) and the key, so a plan looks a resource up and decodes only the documents it
compares, one at a time, and the export cache writes the texts as they are (`provider.live`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import orjson

from tenancy_kinds import ResourceKey


class Documents(Sequence[dict[str, Any]]):
    """Documents in order, each as its compact JSON with its key; reading one decodes it (a new dict each
    time: change it freely, nothing kept changes)."""

    __slots__ = ("encoded", "keys")

    def __init__(self, keys: list[ResourceKey] | None = None, encoded: list[bytes] | None = None) -> None:
        self.keys = [] if keys is None else keys
        self.encoded = [] if encoded is None else encoded
        assert len(self.keys) == len(self.encoded)

    @classmethod
    def of(cls, documents: Iterable[dict[str, Any]]) -> Documents:
        """The documents given (dicts, read as they come, or another `Documents`) kept so."""
        if isinstance(documents, Documents):
            return documents
        kept = cls()
        kept.extend(documents)
        return kept

    def extend(self, documents: Iterable[dict[str, Any]]) -> None:
        """Append documents (dicts): what `tenancy_kinds.framing.loads` gathers a body's items in, a chunk
        at a time, so that an export is never held decoded whole."""
        keys, encoded = self.keys, self.encoded
        intern = sys.intern  # the organization of a hundred documents held once, not a hundred times
        dumps = orjson.dumps
        for document in documents:
            key = ResourceKey.of(document)
            keys.append(ResourceKey(intern(key.kind), intern(key.organization), key.name))
            # A copy of exactly its length: what orjson returns keeps the whole buffer it wrote in (8 KB).
            encoded.append(bytes(memoryview(dumps(document))))

    def __len__(self) -> int:
        return len(self.encoded)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [orjson.loads(text) for text in self.encoded[index]]
        return orjson.loads(self.encoded[index])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        loads = orjson.loads
        for text in self.encoded:
            yield loads(text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Documents):
            return self.keys == other.keys and list(self) == list(other)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Documents({len(self)} documents)"

    def by_key(self) -> ByKey:
        """The documents by key (the last of a key twice), decoded when looked up."""
        return ByKey(dict(zip(self.keys, self.encoded, strict=True)))


class ByKey(Mapping[ResourceKey, dict[str, Any]]):
    """Documents by key, each decoded when looked up: iterate the keys and look up only the documents
    needed (`items()` and `values()` decode every one)."""

    __slots__ = ("_encoded",)

    def __init__(self, encoded: dict[ResourceKey, bytes]) -> None:
        self._encoded = encoded

    def __getitem__(self, key: ResourceKey) -> dict[str, Any]:
        return orjson.loads(self._encoded[key])  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._encoded

    def __iter__(self) -> Iterator[ResourceKey]:
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)


def by_key(documents: Iterable[dict[str, Any]]) -> Mapping[ResourceKey, dict[str, Any]]:
    """Documents by key (the last of a key twice): decoded when looked up when they are `Documents`."""
    if isinstance(documents, Documents):
        return documents.by_key()
    return {ResourceKey.of(d): d for d in documents}


__all__ = ["ByKey", "Documents", "by_key"]
