"""The `tenancy` command: parses, calls the core, maps outcomes to exit codes. No business rule lives here.

Commands live in sibling modules, one per area, each exposing `register(group)`.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys

import click

from provider.errors import TenancyError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
GC_THRESHOLD = 50_000  # allocations between young-generation collections (Python's default: 700)
M_ARENA_MAX = -8  # glibc's mallopt parameter: how many malloc arenas the process's threads may use


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tenancy-provider", prog_name="tenancy")
def cli() -> None:
    """Infrastructure as code for multi-tenant mail and workspace services."""


def _register_commands() -> None:
    from provider.cli import backend, reconcile, validate

    for module in (validate, reconcile, backend):
        module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes a message and exit code 1, never a traceback."""
    _register_commands()
    try:
        rc = cli.main(args=argv, prog_name="tenancy", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        # Usage errors are 1, not click's 2: exit 2 means "the plan has changes" (--detailed-exitcode).
        e.show()
        return EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("Aborted; nothing was changed.", err=True)
        return EXIT_ERROR
    except TenancyError as e:
        click.echo(f"Error: {e}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as e:
        if os.environ.get("TENANCY_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(e).__name__}: {e}). Set TENANCY_DEBUG=1 for details.", err=True)
        return EXIT_ERROR
    return rc if isinstance(rc, int) else EXIT_OK


def run() -> None:
    # A plan of 100,000 resources holds millions of small dicts and lists; at the default thresholds the
    # cyclic collector rescans that growing heap again and again (a quarter of a big plan's CPU time).
    # Collections stay on, just rarer: the command creates few reference cycles.
    gc.set_threshold(GC_THRESHOLD, 20, 100)
    _one_malloc_arena()
    sys.exit(main())


def _one_malloc_arena() -> None:
    """Every thread allocates from the process's main malloc arena. glibc gives a thread that allocates
    while another does an arena of its own, and what is freed in one arena is never reused by another: a
    plan's reader thread (the live state arrives while the manifests load) left 40-70 MiB of such holes at
    100,000 resources (a tenth of the plan's peak RSS). Python allocates under the GIL, so the threads
    hardly ever wait for the one arena's lock. Without glibc's `mallopt`: nothing to do."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, 1)
