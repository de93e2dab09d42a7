"""Password sources (`{fromEnv: VAR}` / `{fromFile: path}`), resolved to their values. Pure helpers.

A secret value never leaves this module inside a message: errors name the source (the variable, the
path) and the rule that failed, never the value or a piece of it. How strong a password must be is a
rule both halves enforce: `tenancy_kinds.passwords`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from provider.errors import SecretError
from tenancy_kinds import ResourceKey

MAX_SECRET_FILE_BYTES = 64 * 1024  # a password file is small; anything bigger is the wrong file
PASSWORD_FIELD: tuple[str | int, ...] = ("spec", "password")


class _Position(Protocol):
    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int: ...

    @property
    def col(self) -> int: ...


SecretValues = dict[ResourceKey, dict[str, str]]  # resolved secrets: per resource, per sensitive field


class SecretOwner(Protocol):
    """What `resolve` needs of a manifest: where it is, and the directory it may read secrets from."""

    root: Path

    @property
    def origin(self) -> _Position: ...

    def field_origin(self, path: tuple[str | int, ...]) -> _Position: ...


_Fail = Callable[[str], SecretError]  # builds the located error for a reason


# --- resolution ------------------------------------------------------------------------------------


def describe(source: Mapping[str, Any]) -> str:
    """A source named for people: `environment variable X` or `file path`; never the value."""
    if "fromEnv" in source:
        return f"environment variable {source['fromEnv']}"
    if "fromFile" in source:
        return f"file {source['fromFile']}"
    return "an unknown password source"


def resolve(
    manifest: SecretOwner,
    source: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
    allow_outside: bool = False,
    *,
    field: tuple[str | int, ...] = PASSWORD_FIELD,
) -> str:
    """The secret value a source points at. Raises `SecretError` naming file:line and the source.

    `fromFile` is relative to the manifest file's directory and may not leave `manifest.root` (through
    `../`, an absolute path or a symbolic link) unless `allow_outside`: a manifest from a pull request must
    not be able to read, say, ~/.ssh/id_rsa into a password that is then sent to a server.
    """
    where = manifest.field_origin(field)
    dotted = _dotted(field)

    def fail(reason: str) -> SecretError:
        return SecretError(f"{dotted}: {reason}", file=where.file, line=where.line, col=where.col, field=dotted)

    if "fromEnv" in source:
        return _from_env(str(source["fromEnv"]), env, fail)
    if "fromFile" in source:
        return _from_file(manifest, str(source["fromFile"]), allow_outside, fail)
    raise fail("a password source must be {fromEnv: VARIABLE} or {fromFile: path}")


def _from_env(name: str, env: Mapping[str, str], fail: _Fail) -> str:
    value = env.get(name)
    if value is None:
        raise fail(f"environment variable {name} is not set; export it before running tenancy, or use fromFile")
    if value == "":
        raise fail(f"environment variable {name} is empty; set it to the password")
    return value


def _from_file(manifest: SecretOwner, raw: str, allow_outside: bool, fail: _Fail) -> str:
    root = Path(manifest.root)
    path = Path(raw)
    if path.is_absolute() and not allow_outside:
        raise fail(
            f"password file {raw} is an absolute path; use a path relative to the manifest, "
            f"inside the manifest directory {root}"
        )
    target = _target(manifest, raw)
    if not allow_outside and not _inside(target, root):
        raise fail(
            f"password file {raw} points outside the manifest directory {root} (through ../ or a symbolic link); "
            "keep password files inside the directory you validate or apply"
        )
    return _read_secret_file(target, raw, fail)


def _target(manifest: SecretOwner, raw: str) -> Path:
    """The file a `fromFile` source names: relative to its manifest's directory."""
    path = Path(raw)
    return path if path.is_absolute() else Path(manifest.origin.file).parent / path


# --- what a source reads, for the plan memo (provider.memo) -----------------------------------------


@dataclass(frozen=True, order=True)
class SecretInput:
    """What a source reads, named (never its value): ("env", VARIABLE) or ("file", path)."""

    kind: str
    name: str


def input_of(manifest: SecretOwner, source: Mapping[str, Any]) -> SecretInput | None:
    if "fromEnv" in source:
        return SecretInput("env", str(source["fromEnv"]))
    if "fromFile" in source:
        return SecretInput("file", str(_target(manifest, str(source["fromFile"])).absolute()))
    return None


def read_input(source: SecretInput, env: Mapping[str, str]) -> bytes | None:
    """What the source holds now, as `resolve` would read it (a file with its real path: whether it lies
    inside the manifest directory depends on it); None when it holds nothing readable."""
    if source.kind == "env":
        value = env.get(source.name)
        return None if value is None else value.encode("utf-8", "surrogateescape")
    try:
        target = Path(source.name)
        if not stat.S_ISREG(target.stat().st_mode):  # a pipe would wait, a device never end
            return None
        with open(target, "rb") as held:
            data = held.read(MAX_SECRET_FILE_BYTES + 1)
        return str(target.resolve()).encode("utf-8", "surrogateescape") + b"\0" + data
    except (OSError, RuntimeError):
        return None


def _inside(target: Path, root: Path) -> bool:
    """Whether `target`, symbolic links followed, lies within `root` (also with links followed)."""
    try:
        return target.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop: certainly not a usable password file
        return False


def _read_secret_file(target: Path, raw: str, fail: _Fail) -> str:
    too_large = f"password file {raw} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB; is it the right file?"
    try:
        st = target.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # a pipe would wait for a writer, a device (/dev/zero) never end
            raise fail(f"password file {raw} is not a regular file (a device or a pipe); point it at a file")
        if st.st_size > MAX_SECRET_FILE_BYTES:
            raise fail(too_large)
        with target.open("rb") as held:
            data = held.read(MAX_SECRET_FILE_BYTES + 1)
        if len(data) > MAX_SECRET_FILE_BYTES:  # it grew since the stat
            raise fail(too_large)
    except FileNotFoundError:
        raise fail(f"password file {raw} does not exist (looked for {target})") from None
    except IsADirectoryError:
        raise fail(f"password file {raw} is a directory, not a file") from None
    except OSError as e:
        raise fail(f"password file {raw} cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"password file {raw} is not UTF-8 text") from None
    # Editors add a final newline; it is never part of the password. Only one is removed, on purpose.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if text == "":
        raise fail(f"password file {raw} is empty; put the password in it")
    return text


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


__all__ = [
    "MAX_SECRET_FILE_BYTES",
    "SecretInput",
    "SecretOwner",
    "SecretValues",
    "describe",
    "input_of",
    "read_input",
    "resolve",
]
