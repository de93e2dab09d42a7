"""`python -m provider.cli`: the `tenancy` command."""

from provider.cli import run

run()
