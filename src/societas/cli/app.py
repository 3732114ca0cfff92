"""The ``societas`` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

import os

# llama.cpp keeps every core busy; a multithreaded BLAS competing with it slows small numpy
# products (retrieval) tenfold, so numpy stays single-threaded unless the user says otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from typing import Annotated

import typer

from societas.cli import (
    audit_commands,
    evaluate_commands,
    experiment_commands,
    model_commands,
    run_commands,
    validate_commands,
    viewer_commands,
)
from societas.llm.patience import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    MAX_RETRIES,
    RETRIES_VARIABLE,
    TIMEOUT_VARIABLE,
    Patience,
    patience_from,
    set_patience,
)
from societas.llm.types import LLMConfigError

app = typer.Typer(
    name="societas",
    help="Simulate societies of generative agents and run experiments on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    llm_timeout: Annotated[
        float | None,
        typer.Option(
            "--llm-timeout",
            min=1,
            help="Seconds before one model call times out and is tried again "
            f"(default {DEFAULT_TIMEOUT_S:g}; environment: {TIMEOUT_VARIABLE}).",
        ),
    ] = None,
    llm_retries: Annotated[
        int | None,
        typer.Option(
            "--llm-retries",
            min=0,
            max=MAX_RETRIES,
            help="Retries of a model call that timed out or failed transiently before it "
            f"counts as failed (default {DEFAULT_RETRIES}; environment: {RETRIES_VARIABLE}).",
        ),
    ] = None,
) -> None:
    """Simulate societies of generative agents and run experiments on them."""
    if llm_timeout is None and llm_retries is None:
        return
    try:
        current = patience_from()
    except LLMConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    # Set in the environment so Ray workers started by the command use them too.
    set_patience(
        Patience(
            timeout_s=current.timeout_s if llm_timeout is None else llm_timeout,
            max_retries=current.max_retries if llm_retries is None else llm_retries,
        )
    )


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
audit_commands.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
