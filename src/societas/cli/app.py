"""The ``societas`` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

import os

# llama.cpp keeps every core busy; a multithreaded BLAS competing with it slows small numpy
# products (retrieval) tenfold, so numpy stays single-threaded unless the user says otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from societas.cli import (
    evaluate_commands,
    experiment_commands,
    model_commands,
    run_commands,
    validate_commands,
    viewer_commands,
)

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


run_commands.register(app)
model_commands.register(app)
viewer_commands.register(app)
experiment_commands.register(app)
evaluate_commands.register(app)
validate_commands.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
