"""Command-line options naming where an ``openai:`` model is served, shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server URL, or several separated by commas (openai: models).",
    ),
]
EndpointsOption = Annotated[
    Path | None,
    typer.Option(
        "--endpoints",
        help="YAML file of OpenAI-compatible endpoints and their limits (openai: models).",
        dir_okay=False,
    ),
]
