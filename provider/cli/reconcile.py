"""`tenancy plan`, `apply`, `destroy`, `import`: parse, call the engine, map outcomes to exit codes."""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from provider import engine, importer, policy, render
from provider.apply import Outcome, Report, Status, apply, apply_atomically
from provider.cli import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from provider.client import Client
from provider.connect import DEFAULT_BACKEND, backend_url, connect
from provider.errors import ApplyInterrupted, ApplyRefused
from provider.plan import Plan
from provider.targeting import Selection

DEFAULT_MAX_DELETIONS = 25
# Measured at 30,000 creates: 50 -> 250 a changeset cut a cold apply by 20 % on SQLite and 30 % on
# PostgreSQL (fewer transactions and write-lock hand-overs); 1,000 was slower again on PostgreSQL.
DEFAULT_BATCH_SIZE = 250


def _console(err: bool = False) -> Console:
    # rich honours NO_COLOR and drops colour when the stream is not a terminal.
    return Console(stderr=err, highlight=False, soft_wrap=True)


def backend_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--backend",
        metavar="URL",
        help="http(s)://… (the HTTP API, with TENANCY_TOKEN), sqlite:///PATH or postgresql://… (embedded). "
        f"Default: $TENANCY_BACKEND or {DEFAULT_BACKEND}",
    )(fn)


def stack_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--stack", metavar="NAME", help="Stack name (default: $TENANCY_STACK, or `stack:` in tenancy.yaml)."
    )(fn)


def policy_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--policy", "policies", multiple=True, metavar="PATH",
        help="Rego policy file or directory (repeatable; also `policy:` in tenancy.yaml), judged with conftest's "
             "conventions: `deny`/`violation` messages fail the plan, `warn` messages are shown.",
    )(fn)


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--target`, `--exclude` (repeatable) and `--selector`: plan only part of the changes."""
    fn = click.option(
        "--selector", metavar="LABELS",
        help="Plan only changes to resources with these labels (the API's syntax: `tier=gold,!legacy`), with "
             "the changes they need first.",
    )(fn)
    fn = click.option(
        "--exclude", "excludes", multiple=True, metavar="ADDRESS",
        help="Leave out the changes to these resources and every change that needs them (repeatable).",
    )(fn)
    return click.option(
        "--target", "targets", multiple=True, metavar="ADDRESS",
        help="Plan only the changes to these resources, with the changes they need first (repeatable): "
             "Organization/NAME, KIND/ORGANIZATION/NAME (`*` matches within a segment) or Tenant/NAME.",
    )(fn)


def _selection(targets: tuple[str, ...], excludes: tuple[str, ...], selector: str | None) -> Selection | None:
    """The selection the options ask for (checked now, before the backend is read); None for a whole plan."""
    return Selection(targets, excludes, selector) or None


paths_argument = click.argument("paths", nargs=-1, type=click.Path(), metavar="PATH...")


@contextlib.contextmanager
def _client(backend: str | None) -> Iterator[tuple[Client, str]]:
    url = backend_url(backend)
    client = connect(url)
    try:
        yield client, client.description
    finally:
        client.close()


def _print_plan(plan: Plan, output: str) -> None:
    if output == "json":
        click.echo(render.json_text(plan), nl=False)
    elif output == "markdown":
        click.echo(render.markdown(plan), nl=False)
    else:
        console = _console()
        lines = render.iter_text_lines(plan)
        if not console.is_terminal:  # plain text: a few big writes (rich costs ~0.1 ms a line, minutes for big plans)
            while chunk := list(itertools.islice(lines, 4096)):  # never the whole text at once (RSS)
                click.echo("".join(line + "\n" for _, line in chunk), nl=False)
            return
        for style, line in lines:
            console.print(Text(line, style=style))


_POLICY_STYLES = {policy.Outcome.FAIL: "red", policy.Outcome.WARN: "yellow", policy.Outcome.EXCEPTION: "cyan"}


def _print_policies(prepared: engine.Prepared) -> None:
    """Conftest's lines, on standard error: standard output keeps the plan alone (`--json`)."""
    report = prepared.policy_report
    if report is None:
        return
    console = _console(err=True)
    console.print()
    for printed in report.prints:
        console.print(Text(f"PRNT  {printed}", style="blue"))
    for result in report.results:
        console.print(Text(str(result), style=_POLICY_STYLES[result.outcome]))
    style = "red" if report.failures else "yellow" if report.warnings else "green"
    console.print(Text(report.summary, style=style))


def _require_paths(paths: tuple[str, ...]) -> list[str]:
    if not paths:
        raise click.UsageError("give at least one manifest file or directory (PATH...)")
    return list(paths)


@click.command("plan")
@paths_argument
@click.option("--out", "out", metavar="FILE", help="Save the plan for `tenancy apply --plan FILE`.")
@click.option(
    "--json", "as_json", is_flag=True, help=f"Print the plan as JSON (format_version {render.FORMAT_VERSION})."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default=None, help="Output format.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes (0 none, 1 error).")
@click.option("--allow-secret-outside", is_flag=True, help="Let fromFile read outside the manifest directory.")
@selection_options
@policy_option
@backend_option
@stack_option
def plan_command(
    paths: tuple[str, ...], out: str | None, as_json: bool, fmt: str | None, detailed_exitcode: bool,
    allow_secret_outside: bool, targets: tuple[str, ...], excludes: tuple[str, ...], selector: str | None,
    policies: tuple[str, ...], backend: str | None, stack: str | None,
) -> int:
    """Compare the manifests with the live backend and print what would change."""
    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two outputs; give one of them")
    selection = _selection(targets, excludes, selector)
    with _client(backend) as (client, description):
        prepared = engine.prepare(
            _require_paths(paths), client, description, stack_option=stack, allow_outside=allow_secret_outside,
            policy_paths=policies, selection=selection, recall=not out,  # a saved plan needs the manifests read
        )
    _print_plan(prepared.plan, "json" if as_json else fmt or "text")
    _print_policies(prepared)
    engine.require_policies_pass(prepared)  # a plan that fails its policies is not saved either
    if out:
        engine.save(prepared, out)
    if out and not as_json and fmt in (None, "text"):
        click.echo(f"Saved the plan to {out}. Apply it with: tenancy apply --plan {out}")
    return EXIT_CHANGES if detailed_exitcode and prepared.plan.has_changes else EXIT_OK


def _confirm(plan: Plan, yes: bool, verb: str) -> None:
    if yes or not plan.has_changes:
        return
    if not sys.stdin.isatty():
        raise ApplyRefused(
            f"no terminal to confirm on: nothing was changed. Re-run with --yes to {verb} without asking."
        )
    answer = click.prompt(
        f"Do you want to {verb} these changes? Only 'yes' will be accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        raise ApplyRefused(f"{verb} cancelled: nothing was changed.")


def _guard_deletions(plan: Plan, max_deletions: int) -> None:
    if plan.deletions > max_deletions:
        raise ApplyRefused(
            f"the plan deletes {plan.deletions} resources (replacements count), more than --max-deletions "
            f"{max_deletions}: nothing was changed. Check the plan, then raise --max-deletions if it is right."
        )


def _outcome_line(outcome: Outcome) -> tuple[str, str]:
    op = outcome.op
    if outcome.status is Status.APPLIED:
        return "green", f"{outcome.status.value}: {op.symbol} {op.key} ({op.action.value})"
    style = "red" if outcome.status is Status.FAILED else "yellow"
    return style, f"{outcome.status.value}: {op.symbol} {op.key} ({op.action.value}): {outcome.message}"


@dataclass(frozen=True)
class Execution:
    parallelism: int = 10
    batch_size: int = DEFAULT_BATCH_SIZE
    atomic: bool = False
    allow_outside: bool = False


def _run_apply(prepared: engine.Prepared, client: Client, how: Execution) -> Report:
    """The apply, its outcomes said as they come; interrupted (Ctrl-C), it says how far it got."""
    applied: list[Outcome] = []
    try:
        return _applying(prepared, client, how, applied)
    except KeyboardInterrupt:
        total = len(prepared.plan.operations)
        if how.atomic:
            so_far = "the changes go in one changeset, whole or not at all"
        else:
            so_far = f"{len(applied)} of {total} changes were applied, and changes already sent may still apply"
        raise ApplyInterrupted(
            f"interrupted during the apply: {so_far}; run `tenancy plan` to see what is left, then apply again"
        ) from None


def _applying(prepared: engine.Prepared, client: Client, how: Execution, applied: list[Outcome]) -> Report:
    secrets = engine.secrets_to_send(prepared)
    if how.atomic:
        report = apply_atomically(prepared.plan, client, secrets=secrets)
        for outcome in report.outcomes:
            click.echo(_outcome_line(outcome)[1], err=True)
        return report
    run = functools.partial(
        apply, prepared.plan, client, secrets=secrets, parallelism=how.parallelism, batch_size=how.batch_size
    )
    total = len(prepared.plan.operations)
    console = _console(err=True)
    if console.is_terminal and total:
        with Progress(
            TextColumn("Applying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=total)

            def tick(outcome: Outcome) -> None:
                _count(applied, outcome)
                progress.update(task, advance=1, description=str(outcome.op.key))
                if outcome.status is not Status.APPLIED:
                    style, line = _outcome_line(outcome)
                    progress.console.print(Text(line, style=style))

            report = run(on_outcome=tick)
    else:

        def plain(outcome: Outcome) -> None:
            _count(applied, outcome)
            click.echo(_outcome_line(outcome)[1], err=True)

        report = run(on_outcome=plain)
    return report


def _count(applied: list[Outcome], outcome: Outcome) -> None:
    if outcome.status is Status.APPLIED:
        applied.append(outcome)


def _report(report: Report) -> int:
    console = _console()
    failures = [o for o in report.outcomes if o.status is not Status.APPLIED]
    if failures:
        console.print(Text("\nChanges that did not apply:", style="bold"))
        for outcome in failures:
            style, line = _outcome_line(outcome)
            console.print(Text(f"  {line}", style=style if console.is_terminal else ""))
    console.print(
        Text(report.summary, style=("bold green" if report.ok else "bold red") if console.is_terminal else "")
    )
    if not report.ok:
        console.print("Nothing else was left half-done; fix the failures and run apply again to converge.")
    return EXIT_OK if report.ok else EXIT_ERROR


@click.command("apply")
@paths_argument
@click.option("--plan", "plan_file", metavar="FILE", help="Apply a plan saved with `tenancy plan --out FILE`.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism", type=click.IntRange(1, 256), default=10, show_default=True, help="Independent changes at once."
)
@click.option(
    "--max-deletions",
    type=click.IntRange(0),
    default=DEFAULT_MAX_DELETIONS,
    show_default=True,
    help="Refuse a plan with more deletions (replacements count).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Independent changes sent together as one changeset (a refused batch is retried change by change).",
)
@click.option("--atomic", is_flag=True, help="Apply the whole plan as one transaction: all or nothing.")
@click.option("--allow-secret-outside", is_flag=True, help="Let fromFile read outside the manifest directory.")
@selection_options
@policy_option
@backend_option
@stack_option
def apply_command(
    paths: tuple[str, ...],
    plan_file: str | None,
    yes: bool,
    parallelism: int,
    max_deletions: int,
    batch_size: int,
    atomic: bool,
    allow_secret_outside: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    selector: str | None,
    policies: tuple[str, ...],
    backend: str | None,
    stack: str | None,
) -> int:
    """Make the backend match the manifests (or a saved plan)."""
    if plan_file and paths:
        raise click.UsageError("give either PATH... or --plan FILE, not both")
    selection = _selection(targets, excludes, selector)
    if plan_file and selection:
        raise click.UsageError(
            "a saved plan keeps the selection it was made with: give --target, --exclude and --selector to "
            "`tenancy plan --out FILE`, not with --plan"
        )
    saved = engine.load_saved(plan_file) if plan_file else None
    with _client(backend) as (client, description):
        if saved is not None:
            prepared = engine.prepare_saved(
                saved, client, description, allow_outside=allow_secret_outside, policy_paths=policies
            )
        else:
            prepared = engine.prepare(
                _require_paths(paths),
                client,
                description,
                stack_option=stack,
                allow_outside=allow_secret_outside,
                policy_paths=policies,
                selection=selection,
            )
        _print_plan(prepared.plan, "text")
        _print_policies(prepared)
        engine.require_policies_pass(prepared)
        if not prepared.plan.has_changes:
            return EXIT_OK
        _guard_deletions(prepared.plan, max_deletions)
        _confirm(prepared.plan, yes, "apply")
        how = Execution(parallelism, batch_size, atomic, allow_secret_outside)
        # The outcomes are said, and let go, before the read-back that remembers the plan that follows.
        rc = _report(_run_apply(prepared, client, how))
        if rc == EXIT_OK:
            engine.remember_applied(prepared, client)
        return rc


@click.command("destroy")
@paths_argument
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", type=click.IntRange(1, 256), default=10, show_default=True)
@selection_options
@policy_option
@backend_option
@stack_option
def destroy_command(
    paths: tuple[str, ...],
    yes: bool,
    parallelism: int,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    selector: str | None,
    policies: tuple[str, ...],
    backend: str | None,
    stack: str | None,
) -> int:
    """Delete everything the stack manages (with --target, --exclude or --selector: only part of it)."""
    selection = _selection(targets, excludes, selector)
    with _client(backend) as (client, description):
        prepared = engine.prepare(
            _require_paths(paths),
            client,
            description,
            stack_option=stack,
            destroy=True,
            policy_paths=policies,
            selection=selection,
        )
        _print_plan(prepared.plan, "text")
        _print_policies(prepared)
        engine.require_policies_pass(prepared)
        if not prepared.plan.has_changes:
            return EXIT_OK
        _confirm(prepared.plan, yes, "destroy")
        return _report(_run_apply(prepared, client, Execution(parallelism=parallelism)))


@click.command("import")
@click.option("--organization", required=True, metavar="ORG", help="The organization to import (with its sub-tenants).")
@click.option("--out", "out_dir", default=".", show_default=True, metavar="DIR", help="Where to write the manifests.")
@backend_option
def import_command(organization: str, out_dir: str, backend: str | None) -> int:
    """Write manifests for what exists, so that a following plan is empty."""
    with _client(backend) as (client, _):
        documents = importer.collect(client, organization)
        stack = importer.shared_stack(documents)
        elsewhere = 0 if stack is None else importer.held_elsewhere(client, stack, documents)
    written = importer.write(documents, out_dir, elsewhere=elsewhere, organization=organization)
    for path in written:
        click.echo(f"wrote {path}")
    if stack is not None and elsewhere:
        click.echo(f"Note: {importer.partial_stack_note(stack, elsewhere, organization)}.")
    click.echo(f"Imported {len(documents)} resources of {organization} into {out_dir}.")
    return EXIT_OK


def register(group: click.Group) -> None:
    for command in (plan_command, apply_command, destroy_command, import_command):
        group.add_command(command)


__all__ = ["register"]
