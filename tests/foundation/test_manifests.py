"""The manifest loader: YAML safety, positions, structural validation and its messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from provider.errors import ConfigError, Finding, ManifestError, Severity
from tenancy_kinds import KINDS, ResourceKey
from provider.manifests import MAX_FILE_BYTES, Origin, collect, load, load_text, yaml_events

from .helpers import BASE, ORG, loader_errors, user, write

USER = """\
apiVersion: tenancy/v1
kind: User
metadata:
  name: ada
  organization: acme
spec:
  email: ada@acme.example
  displayName: Ada
"""


def only_error(text: str, tmp_path: Path) -> Finding:
    errors = loader_errors(text, tmp_path)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


# --- positions ------------------------------------------------------------------------------------------


def test_error_in_third_document_reports_that_documents_line(tmp_path: Path) -> None:
    text = (
        ORG + "---\n" + USER + "---\n# a comment\n\n" + USER.replace("name: ada", "name: Bob").replace("ada@", "bob@")
    )
    error = only_error(text, tmp_path)
    expected = text.splitlines().index("  name: Bob") + 1
    assert (error.file, error.line, error.col) == (str(tmp_path / "m.yaml"), expected, 3)
    assert error.field == "metadata.name"
    assert error.message.startswith("metadata.name: 'Bob' is not valid: expected 1 to 63 lowercase letters")


def test_document_and_field_origins(tmp_path: Path) -> None:
    text = ORG + "---\n\n" + USER
    manifest_set = load_text(text, "x.yaml")
    org, ada = manifest_set.manifests
    assert (org.origin.line, ada.origin.line) == (1, 10)
    assert str(ada.field_origin(("spec", "email"))) == "x.yaml:16:3"
    assert str(ada.field_origin(("metadata", "name"))) == "x.yaml:13:3"
    assert str(org.field_origin(("spec", "domains", 0))) == "x.yaml:7:13"
    # a field that is not written falls back to its nearest written parent
    assert ada.field_origin(("spec", "password", "fromEnv")) == ada.field_origin(("spec",))
    assert ada.field_origin(()) == ada.origin


def test_field_positions_are_read_from_the_file_only_while_it_holds_the_text_read(tmp_path: Path) -> None:
    """A file's text is not kept beside its manifests: field positions are read from the file when first
    asked. A file that no longer holds the text its manifests were read from (read, or taken from the
    cache) gives them its own or none (a finding then points at the document), never its new text's."""
    (tmp_path / "m").mkdir()
    file = tmp_path / "m" / "x.yaml"
    for name in ("Ada", "Ada", "Ida"):  # read, from the cache, read
        text = ORG + "---\n\n" + USER.replace("displayName: Ada", f"displayName: {name}")
        file.write_text(text)
        assert str(load([tmp_path / "m"]).manifests[1].field_origin(("spec", "email"))) == f"{file}:16:3"
        ada = load([tmp_path / "m"]).manifests[1]
        file.write_text("# a comment\n" * 5 + text)  # the same documents, five lines down
        assert ada.field_origin(("spec", "email")) in (ada.origin, Origin(str(file), 16, 3))
        assert ada.origin.line == 10


def test_documents_are_json_plain_camel_case_without_defaults() -> None:
    manifest_set = load_text(ORG + "---\n" + USER + "  billingRights: true\n  passwordVersion: 2\n")
    ada = manifest_set.manifests[1]
    assert ada.key == ResourceKey("User", "acme", "ada")
    assert ada.kind is KINDS["User"]
    assert ada.document == {
        "apiVersion": "tenancy/v1",
        "kind": "User",
        "metadata": {"name": "ada", "organization": "acme"},
        "spec": {"email": "ada@acme.example", "displayName": "Ada", "billingRights": True, "passwordVersion": 2},
    }
    assert manifest_set.manifests[0].key == ResourceKey("Organization", "", "acme")


def test_empty_documents_are_skipped() -> None:
    manifest_set = load_text("---\n# nothing\n---\n" + ORG + "---\n---\n~\n")
    assert [m.key.name for m in manifest_set] == ["acme"]


# --- YAML safety ------------------------------------------------------------------------------------------


def test_the_c_parser_is_used_when_present() -> None:
    if yaml.__with_libyaml__:
        assert yaml_events.EVENT_LOADER is yaml.CSafeLoader


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    start = time.perf_counter()
    error = only_error(text, tmp_path)
    assert time.perf_counter() - start < 2
    assert "expands to more than 100,000 values (through aliases)" in error.message


def test_a_huge_plain_document_is_refused_without_blaming_aliases(tmp_path: Path) -> None:
    text = "a: [" + ",".join(["1"] * 100_001) + "]\n"
    error = only_error(text, tmp_path)
    assert "expands to more than 100,000 values; refusing to read it: split it into several documents" in error.message
    assert "alias" not in error.message


def test_deep_nesting_is_refused_without_crashing(tmp_path: Path) -> None:
    depth = 200_000  # PyYAML's C composer would overflow the C stack on this
    error = only_error("a: " + "[" * depth + "]" * depth + "\n", tmp_path)
    assert "nests deeper than 100 levels" in error.message


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    error = only_error("a: &x [1, *x]\n", tmp_path)
    assert "alias *x does not refer to an anchor" in error.message


@pytest.mark.parametrize(
    "tag", ["!!python/object:os.system", "!!python/object/apply:os.system", "!custom", "!!binary", "!!set"]
)
def test_arbitrary_tags_are_refused_naming_the_line(tag: str, tmp_path: Path) -> None:
    text = ORG.replace("displayName: Acme", f"displayName: {tag} Acme")
    error = only_error(text, tmp_path)
    assert error.line == 5
    assert "unsupported YAML tag" in error.message
    assert tag.replace("!!", "") in error.message


def test_core_tags_are_accepted() -> None:
    manifest_set = load_text(ORG.replace("displayName: Acme", "displayName: !!str 123"))
    assert manifest_set.manifests[0].spec["displayName"] == "123"


def test_file_size_bound(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: refused from its size, never read
    with pytest.raises(ManifestError) as raised:
        load([big])
    assert "manifests are limited to 10 MiB" in str(raised.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(ORG.replace("Acme", "Acm\xe9").encode("latin-1"))
    with pytest.raises(ManifestError) as raised:
        load([tmp_path])
    finding = raised.value.findings[0]
    assert (finding.line, "not UTF-8") == (5, "not UTF-8" if "not UTF-8" in finding.message else finding.message)


def test_yaml_1_2_booleans_and_numbers(tmp_path: Path) -> None:
    text = ORG.replace(
        "  plan: entry\n",
        "  plan: entry\n  billingAddress: {name: N, street: S, postalCode: 01234, city: Oslo, country: NO}\n",
    )
    # country NO stays the string "NO" (Norway), as in YAML 1.2 and editors; a postal code with a leading
    # zero is an integer in any YAML, so it is refused as one rather than silently becoming 1234 or 668
    error = only_error(text, tmp_path)
    assert error.field == "spec.billingAddress.postalCode"
    assert "expected text, got a whole number" in error.message
    ok = load_text(text.replace("01234", '"01234"'))
    assert ok.manifests[0].spec["billingAddress"]["country"] == "NO"


def test_billing_countries_are_iso_3166_codes(tmp_path: Path) -> None:
    text = ORG.replace(
        "  plan: entry\n",
        "  plan: entry\n  billingAddress: {name: N, street: S, postalCode: '1', city: C, country: UK}\n",
    )
    error = only_error(text, tmp_path)
    assert error.field == "spec.billingAddress.country"
    assert error.message.endswith(
        "'UK' is not an officially assigned ISO 3166-1 alpha-2 country code (the United Kingdom is GB)"
    )


def test_lists_that_are_sets_refuse_repeated_values(tmp_path: Path) -> None:
    team = (
        "---\napiVersion: tenancy/v1\nkind: Team\nmetadata: {name: devs, organization: acme}\n"
        "spec:\n  displayName: Devs\n"
    )
    error = only_error(ORG + team + "  shares: [calendars, contacts, calendars]\n", tmp_path)
    assert (error.field, error.line) == ("spec.shares", 14)
    assert error.message.endswith("'calendars' is listed 2 times; list it once")


def test_integral_floats_are_integers_as_in_json() -> None:
    text = (
        ORG
        + "---\napiVersion: tenancy/v1\nkind: MailboxQuota\nmetadata: {name: q, organization: acme}\n"
        + "spec: {domain: acme.example, maxAddresses: 5.0}\n"
    )
    assert load_text(text).manifests[1].spec["maxAddresses"] == 5


def test_merge_keys_and_anchors_within_a_document() -> None:
    text = (
        ORG
        + "---\n"
        + USER.replace("metadata:\n", "metadata:\n  labels: &labels {team: core, site: berlin}\n")
        + "---\n"
        + USER.replace("name: ada", "name: bob")
        .replace("ada@", "bob@")
        .replace("metadata:\n", "metadata:\n  labels: {<<: {team: core, site: x}, site: paris}\n")
    )
    manifest_set = load_text(text)
    assert manifest_set.manifests[1].document["metadata"]["labels"] == {"team": "core", "site": "berlin"}
    assert manifest_set.manifests[2].document["metadata"]["labels"] == {"team": "core", "site": "paris"}


# --- YAML syntax -------------------------------------------------------------------------------------------


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = USER + "  email: other@acme.example\n"
    error = only_error(ORG + "---\n" + text, tmp_path)
    assert error.line == 17
    assert "duplicate key 'email' (first at line 15)" in error.message


def test_tabs(tmp_path: Path) -> None:
    error = only_error(ORG.replace("  displayName: Acme", "\tdisplayName: Acme"), tmp_path)
    assert (error.line, error.col) == (5, 1)
    assert "tab character cannot indent YAML; indent with spaces" in error.message


def test_bad_indentation(tmp_path: Path) -> None:
    error = only_error(ORG.replace("  plan: entry", " plan: entry"), tmp_path)
    assert error.line == 6
    assert "bad indentation" in error.message


def test_missing_colon(tmp_path: Path) -> None:
    error = only_error(ORG.replace("kind: Organization", "kind Organization"), tmp_path)
    assert error.line == 2
    assert "expected 'key: value' on this line" in error.message


def test_unclosed_quote(tmp_path: Path) -> None:
    error = only_error(ORG.replace("displayName: Acme", "displayName: 'Acme"), tmp_path)
    assert "a quoted string (opened at line 5) is never closed" in error.message


def test_syntax_error_late_in_a_file_keeps_earlier_documents_errors(tmp_path: Path) -> None:
    text = ORG.replace("name: acme", "name: ACME") + "---\n" + USER + "---\nkind: [User\n"
    errors = loader_errors(text, tmp_path)
    assert [e.line for e in errors] == [3, 19]  # an unclosed '[' is noticed at the end


# --- structure -----------------------------------------------------------------------------------------------


def test_unknown_kind_suggests_the_closest(tmp_path: Path) -> None:
    error = only_error(ORG.replace("kind: Organization", "kind: Organisation"), tmp_path)
    assert error.line == 2 and error.field == "kind"
    assert "unknown kind 'Organisation' (did you mean Organization?)" in error.message
    assert "MailboxQuota" in error.message
    assert (
        "did you mean MailboxQuota?"
        in only_error(ORG.replace("kind: Organization", "kind: mailbox-quotas"), tmp_path).message
    )


def test_unknown_api_version(tmp_path: Path) -> None:
    error = only_error(ORG.replace("tenancy/v1", "tenancy/v2"), tmp_path)
    assert "unknown apiVersion 'tenancy/v2'; use tenancy/v1" in error.message


def test_unknown_field_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER + "  emial: x\n", tmp_path)
    assert error.field == "spec.emial" and error.line == 17
    assert "unknown field 'emial' (did you mean 'email'?)" in error.message
    assert "allowed in spec: email, displayName, role, subscription" in error.message


def test_unknown_top_level_and_metadata_fields(tmp_path: Path) -> None:
    errors = loader_errors(
        ORG.replace("metadata: {name: acme}", "metadata: {name: acme, organization: x}\nextra: 1"), tmp_path
    )
    messages = [e.message for e in errors]
    assert any("unknown field 'organization'; allowed in metadata: name, labels, protected" in m for m in messages)
    assert any(
        "unknown field 'extra'; allowed in the document: apiVersion, kind, metadata, spec, status" in m
        for m in messages
    )


def test_wrong_enum_lists_allowed_values(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER + "  role: admin\n", tmp_path)
    assert error.field == "spec.role"
    assert (
        "'admin' is not allowed; use one of: legal-representative, administrator, collaborator, external"
        in error.message
    )


def test_wrong_type(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER + "  passwordVersion: two\n", tmp_path)
    assert error.message == "spec.passwordVersion: expected a whole number, got text"


def test_missing_required_field_points_at_its_parent(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER.replace("  displayName: Ada\n", ""), tmp_path)
    assert (error.line, error.field) == (14, "spec.displayName")
    assert error.message == "spec: required field 'displayName' is missing; add it"


def test_document_must_be_a_mapping(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n- a\n- b\n", tmp_path)
    assert error.line == 9
    assert "a document must be a mapping with apiVersion, kind, metadata and spec; this one is a list" in error.message


def test_clear_text_password_is_refused_without_echo(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER + "  password: Hunter2-Hunter2\n", tmp_path)
    assert error.field == "spec.password"
    assert "{fromEnv: ...} or {fromFile: ...}" in error.message
    assert "Hunter2" not in error.message


def test_password_source_alternatives_fold_into_one_message(tmp_path: Path) -> None:
    error = only_error(ORG + "---\n" + USER + "  password: {fromEnv: A, fromFile: b}\n", tmp_path)
    assert (
        error.message
        == "spec.password: use exactly one of {fromEnv: ...} or {fromFile: ...}, not several fields at once"
    )
    error = only_error(ORG + "---\n" + USER + "  password: {fromEnv: 9LIVES}\n", tmp_path)
    assert error.field == "spec.password.fromEnv" and "an environment variable name" in error.message


def test_same_resource_twice_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": ORG, "b/c.yaml": "# again\n" + ORG})
    with pytest.raises(ManifestError) as raised:
        load([tmp_path])
    (error,) = raised.value.findings
    assert (error.file, error.line) == (str(tmp_path / "b" / "c.yaml"), 4)
    assert f"Organization acme is declared twice (first at {tmp_path / 'a.yaml'}:1:1)" in error.message


def test_every_error_of_every_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": ORG.replace("plan: entry", "plan: gold"), "b.yaml": USER.replace("ada@", "ada-at-")})
    with pytest.raises(ManifestError) as raised:
        load([tmp_path])
    assert [(Path(f.file).name, f.field) for f in raised.value.findings] == [
        ("a.yaml", "spec.plan"),
        ("b.yaml", "spec.email"),
    ]


def test_status_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": ORG + "status: {userCount: 3}\n"})
    manifest_set = load([tmp_path])
    (warning,) = manifest_set.warnings
    assert warning.severity is Severity.WARNING and warning.line == 8


# --- files, directories and the stack --------------------------------------------------------------------


def test_directories_are_read_recursively_and_sorted(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "z.yaml": ORG,
            "a/users.yml": user("ada", role="administrator").lstrip("-\n"),
            "a/b/more.yaml": user("bob"),
            "notes.txt": "not yaml",
            ".github/workflow.yml": "on: push\n",
            ".hidden.yaml": "garbage: [",
            "tenancy.yaml": "stack: prod\n",
            "a/tenancy.yaml": "stack: ignored-inside\n",
        },
    )
    manifest_set = load([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in manifest_set.files] == [
        "a/b/more.yaml",
        "a/users.yml",
        "z.yaml",
    ]
    assert [m.key.name for m in manifest_set] == ["bob", "ada", "acme"]
    assert manifest_set.stack == "prod"
    assert manifest_set.roots == [tmp_path]
    assert all(m.root == tmp_path for m in manifest_set)


def test_file_argument_reads_its_directorys_stack(tmp_path: Path) -> None:
    write(tmp_path, {"org.yaml": ORG, "tenancy.yml": "stack: staging\n"})
    manifest_set = load([tmp_path / "org.yaml"])
    assert manifest_set.stack == "staging" and manifest_set.manifests[0].root == tmp_path
    assert load([tmp_path / "org.yaml", tmp_path]).files == [tmp_path / "org.yaml"]  # read once


def test_stack_is_validated(tmp_path: Path) -> None:
    write(tmp_path, {"org.yaml": ORG, "tenancy.yaml": "stack: Prod_1\nregion: eu\n"})
    with pytest.raises(ManifestError) as raised:
        load([tmp_path])
    messages = [f.message for f in raised.value.findings]
    assert any("stack: 'Prod_1' is not valid" in m for m in messages)
    assert any("unknown field 'region' in tenancy.yaml; allowed: stack" in m for m in messages)


def test_conflicting_stacks_are_an_error(tmp_path: Path) -> None:
    write(tmp_path / "one", {"org.yaml": ORG, "tenancy.yaml": "stack: one\n"})
    write(tmp_path / "two", {"org.yaml": ORG.replace("acme", "beta"), "tenancy.yaml": "stack: two\n"})
    manifest_set, found = collect([tmp_path / "one", tmp_path / "two"])
    assert manifest_set.stack == "one"
    assert ["stack: 'two' differs from stack 'one'" in f.message for f in found] == [True]


def test_no_stack_without_config(tmp_path: Path) -> None:
    write(tmp_path, {"org.yaml": ORG})
    assert load([tmp_path]).stack is None


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        load([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no manifests"):
        load([tmp_path / "empty"])


def test_collect_never_raises_for_invalid_manifests(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": ORG, "b.yaml": "kind: [\n"})
    manifest_set, found = collect([tmp_path])
    assert [m.key.name for m in manifest_set] == ["acme"]
    assert [Path(f.file).name for f in found] == ["b.yaml"]


def test_base_set_loads(tmp_path: Path) -> None:
    write(tmp_path, {"m.yaml": BASE})
    assert len(load([tmp_path])) == 10


def test_pulumi_project_files_are_not_manifests(tmp_path: Path) -> None:
    write(
        tmp_path, {"org.yaml": ORG, "Pulumi.yaml": "name: demo\nruntime: python\n", "Pulumi.dev.yaml": "config: {}\n"}
    )
    assert [p.name for p in load([tmp_path]).files] == ["org.yaml"]


@pytest.mark.parametrize("cached", [False, True], ids=["read", "from the cache"])
def test_words_that_repeat_across_manifests_are_held_once(
    cached: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million manifests repeat their organization, kind and roles a million times: one string each."""
    monkeypatch.setenv("TENANCY_CACHE_DIR", str(tmp_path / "cache"))
    write(tmp_path, {f"{n}.yaml": user(f"{n}1", role="administrator") + user(f"{n}2", role="administrator")
                     for n in ("a", "b")})
    first = load([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    if cached:
        for name in ("a", "b"):  # a new stat, the same text: read from the cache by its hash
            (tmp_path / f"{name}.yaml").touch()
    documents = [m.document for m in (load([tmp_path / "a.yaml", tmp_path / "b.yaml"]) if cached else first)]
    assert len(documents) == 4
    for field in (lambda d: d["kind"], lambda d: d["apiVersion"], lambda d: d["metadata"]["organization"],
                  lambda d: d["spec"]["role"]):
        assert len({id(field(d)) for d in documents}) == 1
    assert len({id(d["spec"]["email"]) for d in documents}) == 4  # (unique values stay as they are)
