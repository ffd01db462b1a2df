"""The ``datamill`` command: a click group whose commands live in one module each."""

from __future__ import annotations

import click

from datamill.cli.adapt import adapt_command, demo_command
from datamill.cli.generate import generate_command, spec_group
from datamill.cli.generate_eval import spec_evaluate_command
from datamill.cli.keys import keys_group, tenants_group
from datamill.cli.models import models_command
from datamill.cli.serve import serve_command
from datamill.cli.worker import worker_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="datamill")
def cli() -> None:
    """Datamill turns raw data into LLM training data."""


cli.add_command(adapt_command)
cli.add_command(demo_command)
cli.add_command(models_command)
cli.add_command(serve_command)
cli.add_command(worker_command)
cli.add_command(keys_group)
cli.add_command(tenants_group)
cli.add_command(spec_group)
cli.add_command(generate_command)
spec_group.add_command(spec_evaluate_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="datamill")


if __name__ == "__main__":  # pragma: no cover
    main()
