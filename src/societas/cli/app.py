"""The ``societas`` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="societas",
    help="Simulate societies of generative agents and run experiments on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Simulate societies of generative agents and run experiments on them."""


@app.command()
def version() -> None:
    """Print the societas version."""
    from societas import __version__

    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
