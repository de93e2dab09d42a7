"""Password sources and password strength."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provider.errors import SecretError, TenancyError
from provider.manifests import Origin
from provider.secrets import input_of, read_input, resolve
from tenancy_kinds.passwords import COMMON_PASSWORDS, weakness

from .helpers import STRONG


@dataclass
class FakeManifest:
    """What resolve() needs of a manifest: its file, its root, and field positions."""

    file: Path
    root: Path
    positions: dict[tuple[str | int, ...], Origin] = field(default_factory=dict)

    @property
    def origin(self) -> Origin:
        return Origin(str(self.file), 3, 1)

    def field_origin(self, path: tuple[str | int, ...]) -> Origin:
        return self.positions.get(tuple(path), Origin(str(self.file), 9, 3))


@pytest.fixture
def manifest(tmp_path: Path) -> FakeManifest:
    root = tmp_path / "root"
    (root / "tenants").mkdir(parents=True)
    (root / "secrets").mkdir()
    return FakeManifest(root / "tenants" / "acme.yaml", root)


def test_from_env(manifest: FakeManifest) -> None:
    assert resolve(manifest, {"fromEnv": "PW"}, env={"PW": STRONG}) == STRONG


def test_missing_variable_names_file_line_and_variable(manifest: FakeManifest) -> None:
    with pytest.raises(SecretError) as raised:
        resolve(manifest, {"fromEnv": "ADA_PASSWORD"}, env={})
    message = str(raised.value)
    assert message.startswith(f"{manifest.file}:9:3: spec.password: ")
    assert "environment variable ADA_PASSWORD is not set" in message
    assert isinstance(raised.value, TenancyError)
    finding = raised.value.as_finding()
    assert (finding.file, finding.line, finding.col, finding.field) == (str(manifest.file), 9, 3, "spec.password")


def test_empty_variable_is_an_error(manifest: FakeManifest) -> None:
    with pytest.raises(SecretError, match="ADA is empty"):
        resolve(manifest, {"fromEnv": "ADA"}, env={"ADA": ""})


def test_from_file_relative_to_the_manifest_one_newline_stripped(manifest: FakeManifest) -> None:
    (manifest.root / "tenants" / "pw.txt").write_text(STRONG + "\n\n")
    assert resolve(manifest, {"fromFile": "pw.txt"}, env={}) == STRONG + "\n"
    (manifest.root / "tenants" / "pw.txt").write_text(STRONG + "\r\n")
    assert resolve(manifest, {"fromFile": "pw.txt"}, env={}) == STRONG


def test_from_file_may_go_up_within_the_root(manifest: FakeManifest) -> None:
    (manifest.root / "secrets" / "ada.txt").write_text(STRONG)
    assert resolve(manifest, {"fromFile": "../secrets/ada.txt"}, env={}) == STRONG


def test_missing_file_names_the_path_never_a_value(manifest: FakeManifest) -> None:
    with pytest.raises(SecretError) as raised:
        resolve(manifest, {"fromFile": "nope.txt"}, env={})
    assert "password file nope.txt does not exist" in str(raised.value)
    assert str(raised.value).startswith(f"{manifest.file}:9:3:")


@pytest.mark.parametrize("make", ["dotdot", "absolute", "symlink", "symlinked-dir"])
def test_from_file_cannot_escape_the_root(manifest: FakeManifest, tmp_path: Path, make: str) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Sup3r-Secret-Outside!\n")
    tenants = manifest.root / "tenants"
    if make == "dotdot":
        source = "../../outside.txt"
    elif make == "absolute":
        source = str(outside)
    elif make == "symlink":
        (tenants / "link.txt").symlink_to(outside)
        source = "link.txt"
    else:
        (tenants / "linked").symlink_to(tmp_path, target_is_directory=True)
        source = "linked/outside.txt"
    with pytest.raises(SecretError) as raised:
        resolve(manifest, {"fromFile": source}, env={})
    message = str(raised.value)
    assert "outside the manifest directory" in message or "absolute path" in message
    assert "Sup3r" not in message
    assert resolve(manifest, {"fromFile": source}, env={}, allow_outside=True) == "Sup3r-Secret-Outside!"


def test_root_given_through_a_symlink_still_works(manifest: FakeManifest, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(manifest.root, target_is_directory=True)
    (manifest.root / "secrets" / "ada.txt").write_text(STRONG)
    via_alias = FakeManifest(alias / "tenants" / "acme.yaml", alias)
    assert resolve(via_alias, {"fromFile": "../secrets/ada.txt"}, env={}) == STRONG


def test_directory_and_empty_file_are_errors(manifest: FakeManifest) -> None:
    with pytest.raises(SecretError, match="is a directory"):
        resolve(manifest, {"fromFile": "../secrets"}, env={})
    (manifest.root / "secrets" / "empty.txt").write_text("\n")
    with pytest.raises(SecretError, match="is empty"):
        resolve(manifest, {"fromFile": "../secrets/empty.txt"}, env={})


@pytest.mark.parametrize("make", ["fifo", "device"])
def test_a_password_file_that_is_not_a_regular_file_is_an_error_not_a_wait(manifest: FakeManifest, make: str) -> None:
    odd = manifest.root / "secrets" / "odd.txt"
    if make == "fifo":
        os.mkfifo(odd)  # reading it would wait for a writer forever
    else:
        odd.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(SecretError, match="is not a regular file"):  # a link out needs allow_outside
        resolve(manifest, {"fromFile": "../secrets/odd.txt"}, env={}, allow_outside=True)
    assert read_input(input_of(manifest, {"fromFile": "../secrets/odd.txt"}), {}) is None  # type: ignore[arg-type]


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads any file")
def test_unreadable_file(manifest: FakeManifest) -> None:
    path = manifest.root / "secrets" / "locked.txt"
    path.write_text(STRONG)
    path.chmod(0)
    with pytest.raises(SecretError, match="cannot be read"):
        resolve(manifest, {"fromFile": "../secrets/locked.txt"}, env={})


WEAK = {
    "short": ("Ab1!xyz", "shorter than 12 characters"),
    "prefix-and-digits": ("xq8274619305", "simple pattern"),
    "digits-only": ("827461930527", "simple pattern"),
    "repeated": ("Kp9!aaaaXm2#", "repeats one character"),
    "alphabet-run": ("Xk9!abcdPq2#", "consecutive characters"),
    "digit-run": ("Xk9!1234Pq2#", "consecutive characters"),
    "descending-run": ("Xk9!4321Pq2#", "consecutive characters"),
    "keyboard-row": ("Zp9!qwertyLm", "consecutive characters"),
    "common": ("iloveyou1234", "common password"),
    "common-capitalised-and-decorated": ("Password123!", "common password"),
    "common-leet": ("P@ssw0rd2024!", "common password"),
    "common-long": ("administrator", "common password"),
    "repeated-chunk": ("xK9#xK9#xK9#", "repeats the same short sequence"),
    "few-distinct": ("abababbabaab", "fewer than 5 different characters"),
}


@pytest.mark.parametrize("name", sorted(WEAK))
def test_weak_passwords(name: str) -> None:
    password, reason = WEAK[name]
    found = weakness(password)
    assert found is not None and reason in found
    assert password not in found


@pytest.mark.parametrize(
    "password", [STRONG, "correct-horse-battery-staple", "Kx8#mQ2$vT7nWr4", "9f3Kc7Tq2mWz", "Dr4gonfly-Meadow-71"]
)
def test_strong_passwords(password: str) -> None:
    assert weakness(password) is None


def test_common_list_is_a_few_hundred_lowercase_words() -> None:
    assert 300 <= len(COMMON_PASSWORDS) <= 2000
    assert all(p == p.lower() for p in COMMON_PASSWORDS)
