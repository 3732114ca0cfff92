"""The ``--ray [ADDRESS]`` option shared by ``run``, ``experiment`` and ``validate``, and the
options that say how a command spreads over Ray (``--model-servers``, ``--world-shards``,
``--workers``).

``--ray`` alone runs on a local Ray instance; ``--ray ADDRESS`` (or ``--ray=ADDRESS``) joins a
cluster. A word after ``--ray`` is taken as its address only when it looks like one (it has a
colon, or is ``auto``/``local``), so ``societas experiment --ray study.yaml`` still reads
``study.yaml`` as the experiment file.

Examples
--------
>>> with_ray_defaults(["--ray", "study.yaml"])
['--ray=local', 'study.yaml']
>>> with_ray_defaults(["study.yaml", "--ray", "10.0.0.5:6379"])
['study.yaml', '--ray', '10.0.0.5:6379']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from societas.distributed.session import LOCAL, RayAddressError, check_address

RAY_FLAG = "--ray"

RayOption = Annotated[
    str | None,
    typer.Option(
        RAY_FLAG,
        metavar="[ADDRESS]",
        help="Run on Ray: alone, a local Ray instance; with HOST:PORT, ray://HOST:PORT or auto, "
        "that cluster.",
    ),
]
ModelServersOption = Annotated[
    int,
    typer.Option(
        "--model-servers",
        min=1,
        max=1024,
        help="With --ray: serve the model calls from K Ray actors, each with its own model; the "
        "town stays in this process and an agent's calls always go to the same server.",
    ),
]
WorldShardsOption = Annotated[
    int,
    typer.Option(
        "--world-shards",
        min=1,
        max=4096,
        help="With --ray: split the town's agents over K world shards (Ray actors), each stepping "
        "the agents of one strip of the map with its own model; records the run one process "
        "records.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        max=4096,
        help="With --ray: workers, each with its own model (default: the cluster's CPUs).",
    ),
]


@dataclass(frozen=True)
class RayPlacement:
    """Where to run: a Ray address (None: local Ray), how many model servers serve the calls of
    a town kept in this process, and how many world shards step the world's agents."""

    address: str | None
    model_servers: int = 1
    world_shards: int = 1


def looks_like_address(word: str) -> bool:
    """Whether a word after ``--ray`` is its address rather than the next argument."""
    return word in (LOCAL, "auto") or (":" in word and not word.startswith("-"))


def with_ray_defaults(args: list[str]) -> list[str]:
    """``args`` with a bare ``--ray`` (no address after it) written as ``--ray=local``."""
    out = list(args)
    for index, word in enumerate(out):
        if word == "--":
            break
        following = out[index + 1] if index + 1 < len(out) else None
        if word == RAY_FLAG and (following is None or not looks_like_address(following)):
            out[index] = f"{RAY_FLAG}={LOCAL}"
    return out


class RayCommand(TyperCommand):
    """A command whose ``--ray`` option may be given without a value."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        result: list[str] = super().parse_args(ctx, with_ray_defaults(args))
        return result


def ray_placement(
    ray: str | None, model_servers: int = 1, world_shards: int = 1
) -> RayPlacement | None:
    """The placement the options ask for (None: no Ray); a bad address exits with a message."""
    if ray is None:
        if model_servers != 1:
            raise typer.BadParameter("--model-servers needs --ray", param_hint="--model-servers")
        if world_shards != 1:
            raise typer.BadParameter("--world-shards needs --ray", param_hint="--world-shards")
        return None
    if model_servers != 1 and world_shards != 1:
        raise typer.BadParameter(
            "give --model-servers or --world-shards, not both (world shards each have their own "
            "model)",
            param_hint="--world-shards",
        )
    try:
        return RayPlacement(check_address(ray), model_servers, world_shards)
    except RayAddressError as error:
        raise typer.BadParameter(str(error), param_hint=RAY_FLAG) from None
