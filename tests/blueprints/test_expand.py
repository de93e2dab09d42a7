"""Expansion on plain data: what a Tenant becomes, and every error naming both of its places."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provider import manifests, rules
from provider.blueprints.errors import ExpansionError
from provider.blueprints.expressions import interpolate, parse, truthy
from provider.errors import Finding, Severity
from tenancy_kinds import ResourceKey

from .data import BLUEPRINT, tenant


def collect(tmp_path: Path, files: dict[str, str]) -> tuple[manifests.ManifestSet, list[Finding]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return manifests.collect([tmp_path])


def errors(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if f.severity is Severity.ERROR]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def documents(manifest_set: manifests.ManifestSet) -> dict[ResourceKey, dict[str, Any]]:
    return {m.key: m.document for m in manifest_set}


# --- expressions, on plain data ----------------------------------------------------------------------------

SCOPE = {
    "tenant": {"name": "acme", "labels": {"tier": "gold", "example.com/zone": "eu"}},
    "params": {"seats": 10, "ratio": 1.5, "on": True, "list": [1, 2], "map": {"a": "b"}, "text": "x",
               "self": "${params.self}", "nothing": None},
    "each": {"name": "bob"},
    "index": 3,
}


def value(text: str) -> Any:
    parts = parse(text)
    assert parts is not None
    return interpolate(parts, SCOPE)


def test_a_whole_expression_keeps_its_type() -> None:
    assert value("${params.seats}") == 10
    assert value("${params.on}") is True
    assert value("${params.list}") == [1, 2]
    assert value("${params.map}") == {"a": "b"}
    assert value("${ params.nothing }") is None
    assert value("${index}") == 3


def test_an_expression_in_a_longer_text_is_interpolated() -> None:
    assert value("${each.name}@${tenant.name}.example") == "bob@acme.example"
    assert value("seat ${index} of ${params.seats}, ratio ${params.ratio}") == "seat 3 of 10, ratio 1.5"
    assert value("${tenant.labels.tier}/${tenant.labels.example.com/zone}") == "gold/eu"
    assert value("${params.list.1}") == 2


def test_escapes_and_dollars_are_literal() -> None:
    assert value("$${params.seats}") == "${params.seats}"
    assert value("cost: $5, $${x} and ${params.text}") == "cost: $5, ${x} and x"
    assert parse("no expressions here, just $") is None


def test_a_value_found_is_never_read_for_expressions_again() -> None:
    assert value("${params.self}") == "${params.self}"
    assert value("again: ${params.self}") == "again: ${params.self}"


@pytest.mark.parametrize("text, words", [
    ("a ${params.list} b", "is a list of 2 items: inside a longer text an expression must be text or a number"),
    ("a ${params.map}", "is a mapping"),
    ("a ${params.on}", "true (true/false)"),
    ("${params.seets}", "params has no 'seets'"),
    ("${params.list.7}", "is a list of 2 items, and '7' is not one of its numbers"),
    ("${params.seats.x}", "params.seats is int, it has no 'x'"),
    ("${tenant.labels.zone}", "has no 'zone'"),
    ("${params.seats", "is never closed"),
    ("${1 + 1}", "is not an expression"),
    ("${params.seats + 1}", "has the step 'seats + 1'"),
    ("${os.system('ls')}", "is not an expression"),
    ("${params..x}", "has an empty step"),
    ("${tenant.uid}", "a tenant has name and labels.KEY"),
    ("${index.x}", "index is a number"),
])
def test_what_is_not_an_expression_or_does_not_resolve_is_said(text: str, words: str) -> None:
    with pytest.raises(ExpansionError) as caught:
        value(text)
    assert words in caught.value.message


def test_when_is_truthy_as_the_spec_says() -> None:
    assert [truthy(v) for v in (True, 1, -2.5, "x", [0], {"a": 1})] == [True] * 6
    assert [truthy(v) for v in (False, 0, 0.0, "", [], {}, None)] == [False] * 7


# --- expansion ---------------------------------------------------------------------------------------------


def test_a_tenant_expands_to_its_resources_with_types_defaults_and_labels(tmp_path: Path) -> None:
    found, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "acme.yaml": tenant("acme", extra="    seats: 10\n")})
    assert errors(findings) == []
    docs = documents(found)
    assert sorted(str(k) for k in docs) == ["MailboxQuota acme/main", "Organization acme", "User acme/ada",
                                            "User acme/bob", "User acme/eve", "User acme/kim", "User acme/lou"]
    quota = docs[ResourceKey("MailboxQuota", "acme", "main")]
    assert quota["spec"]["maxAddresses"] == 10 and quota["apiVersion"] == "tenancy/v1"
    assert quota["metadata"]["organization"] == "acme"  # the default organization
    org = docs[ResourceKey("Organization", "", "acme")]
    assert org["spec"] == {"displayName": "Acme GmbH", "plan": "entry", "domains": ["acme.example"]}  # plan default
    assert "organization" not in org["metadata"]
    bob, lou = docs[ResourceKey("User", "acme", "bob")], docs[ResourceKey("User", "acme", "lou")]
    assert bob["spec"]["email"] == "bob@acme.example"
    assert bob["metadata"]["labels"] == {"seat": "s0", "tenancy/blueprint": "mail-business", "tenancy/tenant": "acme"}
    assert lou["metadata"]["labels"]["seat"] == "s3"
    assert found.tenants() == ["acme"]
    assert all(m.expansion is not None and m.origin.file.endswith("acme.yaml") for m in found)


def test_defaults_fill_only_what_the_tenant_leaves_out(tmp_path: Path) -> None:
    found, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "a.yaml": tenant("acme", staff="[]")})
    assert errors(findings) == []
    docs = documents(found)
    assert docs[ResourceKey("MailboxQuota", "acme", "main")]["spec"]["maxAddresses"] == 5
    assert not any(k.kind == "Team" for k in docs)  # when: shared defaults to false
    assert len([k for k in docs if k.kind == "User"]) == 1  # forEach over an empty list makes nothing


def test_when_turns_a_resource_on_and_escapes_stay_literal(tmp_path: Path) -> None:
    found, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "a.yaml": tenant("acme", extra="    shared: true\n")})
    assert errors(findings) == []
    team = documents(found)[ResourceKey("Team", "acme", "shared")]
    assert team["spec"]["displayName"] == "Shared ${not an expression}"
    assert team["spec"]["members"] == ["ada"]


def test_expanded_resources_sit_beside_hand_written_ones_and_pass_the_rules(tmp_path: Path) -> None:
    alias = ("apiVersion: tenancy/v1\nkind: Alias\nmetadata: {name: hello, organization: acme}\n"
             "spec: {address: hello@acme.example, user: bob}\n")
    found, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "t/acme.yaml": tenant("acme"), "alias.yaml": alias})
    assert errors(findings) == []
    assert rules.check(found, {}) == []
    hand = found.get(ResourceKey("Alias", "acme", "hello"))
    assert hand is not None and hand.expansion is None


def test_the_same_text_loaded_from_one_string_expands_alike() -> None:
    loaded = manifests.load_text(BLUEPRINT + "---\n" + tenant("acme"), "all.yaml")
    assert len(loaded) == 7 and loaded.tenants() == ["acme"]


# --- errors: each names the Tenant's file:line:col and the blueprint's file:line ---------------------------


def test_parameters_failing_the_schema_name_the_parameter_and_the_schemas_words(tmp_path: Path) -> None:
    text = tenant("acme", extra="    seats: 3\n")
    _, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "acme.yaml": text})
    [error] = errors(findings)
    assert error.startswith(f"{tmp_path}/acme.yaml:{line_of(text, 'seats: 3')}:5: error: Tenant acme (blueprint "
                            f"mail-business at {tmp_path}/bp.yaml:1): parameter seats: 3 is less than the minimum of 5")


def test_a_missing_and_an_unknown_parameter_are_both_said(tmp_path: Path) -> None:
    text = tenant("acme", extra="    colour: blue\n").replace("    company: Acme GmbH\n", "")
    _, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "acme.yaml": text})
    found = " ".join(errors(findings))
    assert "'company' is a required property" in found
    assert "Additional properties are not allowed ('colour' was unexpected)" in found


def test_a_path_that_does_not_resolve_names_the_blueprint_line_and_the_tenant(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace('displayName: "${params.company}"', 'displayName: "${tenant.labels.brand}"')
    _, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    [error] = errors(findings)
    line = line_of(blueprint, "${tenant.labels.brand}")
    assert error == (f"{tmp_path}/acme.yaml:1:1: error: Tenant acme (from {tmp_path}/bp.yaml:{line}): "
                     "spec.displayName: ${tenant.labels.brand} does not resolve: tenant.labels has no 'brand' "
                     "(it has nothing)")


def test_a_tenant_naming_no_blueprint_is_an_error_with_the_closest(tmp_path: Path) -> None:
    text = tenant("acme").replace("blueprint: mail-business", "blueprint: mail-busines")
    _, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "acme.yaml": text})
    [error] = errors(findings)
    assert error == (f"{tmp_path}/acme.yaml:5:3: error: Tenant acme: spec.blueprint: no Blueprint named "
                     f"mail-busines; did you mean mail-business ({tmp_path}/bp.yaml:1:1)?")


def test_interpolating_a_list_is_an_error(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace('displayName: "${params.company}"', 'displayName: "Staff: ${params.staff}"')
    _, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    [error] = errors(findings)
    assert f"acme.yaml:1:1: error: Tenant acme (from {tmp_path}/bp.yaml:{line_of(blueprint, 'Staff: ')})" in error
    assert "${params.staff} is a list of 4 items: inside a longer text an expression must be text or a number" in error


def test_two_tenants_expanding_to_one_resource_name_both_places(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace('metadata: {name: "${tenant.name}"}', 'metadata: {name: "${params.company}"}') \
        .replace("company: {type: string, minLength: 1}", "company: {type: string}")
    one = tenant("one").replace("One GmbH", "same")
    two = tenant("two").replace("Two GmbH", "same").replace("two.example", "one.example")
    _, findings = collect(tmp_path, {"bp.yaml": blueprint, "a/one.yaml": one, "b/two.yaml": two})
    duplicate = [e for e in errors(findings) if "Organization same is declared twice" in e]
    line = line_of(blueprint, "kind: Organization")
    assert duplicate == [
        f"{tmp_path}/b/two.yaml:1:1: error: Organization same (from {tmp_path}/bp.yaml:{line + 1}): metadata.name: "
        f"Organization same is declared twice (first at {tmp_path}/a/one.yaml:1:1, Tenant one from "
        f"{tmp_path}/bp.yaml:{line}); names are unique per kind and organization: rename or remove one of them"
    ]


def test_an_expanded_resource_colliding_with_a_hand_written_one_names_both(tmp_path: Path) -> None:
    hand = ("apiVersion: tenancy/v1\nkind: User\nmetadata: {name: bob, organization: acme}\n"
            "spec: {email: bob@acme.example, displayName: Bob by hand}\n")
    _, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, "hand.yaml": hand, "z/acme.yaml": tenant("acme")})
    [error] = errors(findings)
    assert error.startswith(f"{tmp_path}/z/acme.yaml:1:1: error: User acme/bob (from {tmp_path}/bp.yaml:")
    assert f"User acme/bob is declared twice (first at {tmp_path}/hand.yaml:1:1)" in error


def test_undeclared_parameters_are_found_without_any_tenant(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace("maxAddresses: \"${params.seats}\"", "maxAddresses: \"${params.sesats}\"") \
        .replace('displayName: "${each.displayName}"', 'displayName: "${each.title}"')
    _, findings = collect(tmp_path, {"bp.yaml": blueprint})
    quota, user = errors(findings)
    assert quota.startswith(f"{tmp_path}/bp.yaml:{line_of(blueprint, 'sesats')}:")
    assert ("error: Blueprint mail-business: spec.resources[1].spec.maxAddresses: ${params.sesats} names the "
            "parameter sesats, which the blueprint's parameters schema does not declare") in quota
    assert "${each.title} names title, which the schema of the items of ${params.staff} does not declare" in user


@pytest.mark.parametrize("change, words", [
    (('when: "${params.shared}"', 'when: "${index}"'), "${index} can only be used in a resource with forEach"),
    (('when: "${params.shared}"', 'when: "shared"'), "when takes one whole expression"),
    (('forEach: "${params.staff}"', 'forEach: "${each.name}"'), "forEach names a list of the parameters or the tenant"),
    (("plan: {type: string, default: entry}", "plan: {type: strin}"), "is not a valid JSON Schema"),
    (("labels: {seat:", "labels: {tenancy/tenant: x, seat:"), None),
])
def test_blueprint_errors_are_at_the_blueprint(tmp_path: Path, change: tuple[str, str], words: str | None) -> None:
    blueprint = BLUEPRINT.replace(*change)
    assert blueprint != BLUEPRINT
    _, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    found = errors(findings)
    assert found, "an error was expected"
    if words is None:  # a reserved label set by hand in a blueprint: at the Tenant, naming the blueprint line
        assert found == [f"{tmp_path}/acme.yaml:1:1: error: Tenant acme (from {tmp_path}/bp.yaml:"
                         f"{line_of(blueprint, 'tenancy/tenant: x')}): metadata.labels.tenancy/tenant: label "
                         "tenancy/tenant is reserved: the expansion sets tenancy/blueprint and tenancy/tenant itself, "
                         "and tenancy the other tenancy/ labels; remove it from the blueprint"]
    else:
        assert any(f"{tmp_path}/bp.yaml:" in e and words in e for e in found), found


def test_a_field_the_kind_refuses_is_said_at_the_tenant_with_the_blueprint_line(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace("role: administrator", "role: boss")
    _, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    [error] = errors(findings)
    assert error.startswith(f"{tmp_path}/acme.yaml:1:1: error: User acme/ada (from {tmp_path}/bp.yaml:"
                            f"{line_of(blueprint, 'role: boss')}): spec.role: 'boss' is not allowed")


def test_a_rule_about_an_expanded_resource_names_both_places(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace("role: administrator", "role: collaborator")
    found, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    assert errors(findings) == []
    [admin] = [str(f) for f in rules.check(found, {}) if "administrator" in f.message]
    assert admin.startswith(f"{tmp_path}/acme.yaml:1:1: error: Organization acme (from {tmp_path}/bp.yaml:"
                            f"{line_of(blueprint, 'kind: Organization')}): organization acme declares no administrator")


def test_duplicate_tenants_and_blueprints_name_both_places(tmp_path: Path) -> None:
    _, findings = collect(tmp_path, {"a.yaml": BLUEPRINT, "b.yaml": BLUEPRINT, "c.yaml": tenant("acme"),
                                     "d.yaml": tenant("acme")})
    assert errors(findings) == [
        f"{tmp_path}/b.yaml:3:12: error: Blueprint mail-business is declared twice (first at {tmp_path}/a.yaml:1:1); "
        "blueprints are global: rename or remove one of them",
        f"{tmp_path}/d.yaml:3:12: error: Tenant acme is declared twice (first at {tmp_path}/c.yaml:1:1); a Tenant is "
        "one customer: rename or remove one of them",
    ]


def test_a_blueprint_or_tenant_of_the_wrong_shape_is_worded_like_any_document(tmp_path: Path) -> None:
    _, findings = collect(tmp_path, {"a.yaml": BLUEPRINT.replace("  resources:", "  resourcez:"),
                                     "c.yaml": tenant("acme").replace("blueprint:", "bluprint:")})
    found = " ".join(errors(findings))
    assert "spec.resourcez" in found and "spec.bluprint" in found


def test_the_expansion_labels_are_reserved_unless_written_as_a_pair(tmp_path: Path) -> None:
    def user(labels: str) -> str:
        return f"apiVersion: tenancy/v1\nkind: Organization\nmetadata: {{name: acme, labels: {labels}}}\n" \
               "spec: {displayName: Acme}\n"

    alone, _ = collect(tmp_path / "a", {"o.yaml": user("{tenancy/tenant: acme}")})
    assert [f.message for f in rules.check(alone, {})] == [
        "metadata.labels.tenancy/tenant: label tenancy/tenant is reserved: tenancy sets tenancy/ labels itself "
        "(tenancy/stack comes from the stack name, tenancy/blueprint and tenancy/tenant from the expansion of a "
        "Tenant); remove it"
    ]
    pair, _ = collect(tmp_path / "b", {"o.yaml": user("{tenancy/tenant: acme, tenancy/blueprint: b}")})
    assert rules.check(pair, {}) == []


def test_an_edited_blueprint_is_expanded_afresh_with_the_cache_on(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANCY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TENANCY_NO_CACHE", raising=False)
    hand = ("apiVersion: tenancy/v1\nkind: Alias\nmetadata: {name: hello, organization: acme}\n"
            "spec: {address: hello@acme.example, user: bob}\n")
    files = {"m/bp.yaml": BLUEPRINT, "m/acme.yaml": tenant("acme"), "m/alias.yaml": hand}
    first, _ = collect(tmp_path, files)
    assert len(list((tmp_path / "cache").rglob("*"))) >= 1  # the hand-written file is cached
    (tmp_path / "m" / "bp.yaml").write_text(BLUEPRINT.replace("default: 5", "default: 7"))
    again = manifests.load([tmp_path / "m"])
    assert documents(first)[ResourceKey("MailboxQuota", "acme", "main")]["spec"]["maxAddresses"] == 5
    assert documents(again)[ResourceKey("MailboxQuota", "acme", "main")]["spec"]["maxAddresses"] == 7
    assert documents(again)[ResourceKey("Alias", "acme", "hello")] == documents(first)[ResourceKey("Alias", "acme",
                                                                                                    "hello")]


def test_a_password_source_of_an_expanded_user_is_said_at_the_tenant_with_the_blueprint_line(tmp_path: Path) -> None:
    blueprint = BLUEPRINT.replace("        role: administrator\n",
                                  "        role: administrator\n        password: {fromEnv: \"PW_${tenant.name}\"}\n")
    found, findings = collect(tmp_path, {"bp.yaml": blueprint, "acme.yaml": tenant("acme")})
    assert errors(findings) == []
    [missing] = [str(f) for f in rules.check(found, {}) if f.severity is Severity.ERROR]
    assert missing.startswith(f"{tmp_path}/acme.yaml:1:1: error: User acme/ada (from {tmp_path}/bp.yaml:"
                              f"{line_of(blueprint, 'fromEnv')}): spec.password: environment variable PW_acme is "
                              "not set")


def test_many_tenant_files_read_by_two_processes_keep_their_positions(tmp_path: Path) -> None:
    """Past 64 files a second process reads half of them: its Tenants come back with their positions."""
    files = {f"t/c{i:02d}.yaml": tenant(f"c{i:02d}", staff="[]") for i in range(70)}
    files["t/c69.yaml"] = tenant("c69", staff="[]", extra="    seats: 2\n")
    found, findings = collect(tmp_path, {"bp.yaml": BLUEPRINT, **files})
    [error] = errors(findings)
    assert error.startswith(f"{tmp_path}/t/c69.yaml:{line_of(files['t/c69.yaml'], 'seats: 2')}:5: error: Tenant c69 ")
    assert len(found.tenants()) == 69 and len(found) == 69 * 3
