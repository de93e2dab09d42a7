"""`tenancy validate` (offline checks), `tenancy render` (the manifests with every Tenant expanded) and
`tenancy schema` (the generated JSON Schemas)."""

from __future__ import annotations

import json
import os

import click

from provider import manifests, rules, schemas
from provider.blueprints.output import rendered
from provider.errors import Finding, Severity

EXIT_OK = 0
EXIT_ERROR = 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(findings: list[Finding], files: int, resources: int) -> str:
    """`2 errors, 1 warning in 3 files (14 resources).` or `OK: 14 resources in 3 files, 1 warning.`"""
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    if errors:
        parts = [_plural(errors, "error")] + ([_plural(warnings, "warning")] if warnings else [])
        return f"{', '.join(parts)} in {_plural(files, 'file')} ({_plural(resources, 'resource')})."
    tail = f", {_plural(warnings, 'warning')}" if warnings else ""
    return f"OK: {_plural(resources, 'resource')} in {_plural(files, 'file')}{tail}."


def validate_paths(paths: list[str], resolve_secrets: bool = True) -> tuple[list[Finding], int, int]:
    """Every finding for `paths` (loader and rules), the number of manifest files and of valid resources.

    Rules only run when the files load cleanly: a resource that failed to load would make every
    reference to it look broken.
    """
    manifest_set, findings = manifests.collect(paths)
    if not any(f.severity is Severity.ERROR for f in findings):
        findings = rules.check(manifest_set, os.environ, resolve_secrets=resolve_secrets)
    return sorted(findings), len(manifest_set.files), len(manifest_set.manifests)


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as a JSON list.")
@click.option(
    "--skip-secrets",
    is_flag=True,
    help="Do not read password sources (no environment variables or password files needed).",
)
@click.pass_context
def validate_command(ctx: click.Context, paths: tuple[str, ...], as_json: bool, skip_secrets: bool) -> None:
    """Check manifests offline: schema, references, quotas, admins, passwords.

    PATHS are manifest files or directories (read recursively, *.yaml and *.yml). Every finding is printed
    as FILE:LINE:COL: error|warning: MESSAGE. Exits 0 when there are no errors (warnings allowed), 1 otherwise.
    """
    findings, files, resources = validate_paths(list(paths), resolve_secrets=not skip_secrets)
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        click.echo(summary(findings, files, resources))
    if any(f.severity is Severity.ERROR for f in findings):
        ctx.exit(EXIT_ERROR)


@click.command("render")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--tenant", metavar="NAME", help="Print only what this Tenant expands to.")
def render_command(paths: tuple[str, ...], tenant: str | None) -> None:
    """Print the manifests with every Tenant expanded, as multi-document YAML.

    Each document follows a comment naming its origin (the file, or the Tenant and the blueprint line).
    The output validates and plans exactly like PATHS. Invalid manifests are errors (exit 1), as in validate.
    """
    click.echo(rendered(manifests.load(list(paths)), tenant), nl=False)


@click.command("schema")
@click.option("--out", "out_dir", default="schemas", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the schemas into.")
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if a file in --out is stale.")
@click.pass_context
def schema_command(ctx: click.Context, out_dir: str, check_only: bool) -> None:
    """Generate the JSON Schemas of the manifest documents (and the API's openapi.json).

    Point an editor at them with a first line `# yaml-language-server: $schema=<path>/manifest.schema.json`.
    """
    if check_only:
        stale = schemas.stale_schemas(out_dir)
        for path, why in stale:
            click.echo(f"{path}: {why}")
        if stale:
            click.echo(f"{_plural(len(stale), 'schema file')} stale; run `tenancy schema --out {out_dir}`.")
            ctx.exit(EXIT_ERROR)
        click.echo(f"{out_dir} is up to date.")
        return
    written = schemas.write_schemas(out_dir)
    click.echo(f"Wrote {_plural(len(written), 'file')} to {out_dir}.")


def register(group: click.Group) -> None:
    group.add_command(validate_command)
    group.add_command(render_command)
    group.add_command(schema_command)
