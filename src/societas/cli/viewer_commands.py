"""``societas serve DIR``: watch a run live, or replay a finished one, in the browser.

The viewer only reads the run directory. It binds 127.0.0.1 by default and then answers only
requests addressed to the loopback host; ``--host 0.0.0.0`` shares the run on the network.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

import typer

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``societas`` app."""
    app.command("serve")(serve)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_host(text: str) -> bool:
    """Whether ``text`` is an IP address or a host name (what ``--host`` may bind).

    >>> is_host("0.0.0.0"), is_host("::1"), is_host("viewer.lan"), is_host("a b"), is_host("")
    (True, True, True, False, False)
    """
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and _HOST_NAME.fullmatch(text) is not None
    return True


def serve(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run directory holding run.sqlite (a finished run or one still being written).",
            exists=True,
            file_okay=False,
            dir_okay=True,
            readable=True,
        ),
    ],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="Interface to bind; the default keeps the run on this machine.")
    ] = "127.0.0.1",
) -> None:
    """Serve a page that shows the run: map, agents, time controls, agent and town panels."""
    import uvicorn

    from societas.viewer.app import create_app
    from societas.viewer.store import RunNotFoundError

    if not is_host(host):
        raise typer.BadParameter(f"{host!r} is not an IP address or host name", param_hint="--host")
    loopback = is_loopback(host)
    # Host-header check against DNS rebinding; Starlette's check cannot parse IPv6 literals.
    allowed = [*LOOPBACK_NAMES, host] if loopback and ":" not in host else None
    try:
        app = create_app(run_dir, allowed_hosts=allowed)
    except RunNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="RUN_DIR") from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    typer.echo(f"Viewing {run_dir.resolve()} at http://{shown}:{port}/  (Ctrl-C stops)")
    if not loopback:
        typer.echo(f"Warning: bound to {host}; anyone who can reach this port can read the run.")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
