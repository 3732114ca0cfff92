"""Joining a Ray cluster (or starting a local one) quietly, with errors a user can act on.

``address`` follows Ray: ``None``/``"local"`` starts a Ray instance on this machine, ``"auto"``
joins the cluster this machine belongs to, ``HOST:PORT`` joins a head node (its GCS port,
6379 by default) and ``ray://HOST:PORT`` connects a Ray client (port 10001 by default).

An address that nothing listens on fails within seconds (Ray itself retries for minutes), and
Ray's start-up logs stay out of the terminal.

Examples
--------
>>> check_address("10.0.0.5:6379")
'10.0.0.5:6379'
>>> check_address("duo")
Traceback (most recent call last):
...
societas.distributed.session.RayAddressError: 'duo' is not a Ray address: give HOST:PORT, \
ray://HOST:PORT, auto or local
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from societas.llm.patience import patience_variables
from societas.llm.types import LLMUnavailableError

LOCAL = "local"
CONNECT_TIMEOUT_S = 5.0
# How long new workers may wait for a place; an autoscaling cluster may need minutes for a node.
PLACEMENT_TIMEOUT_S = 300.0
# Ray's own loggers are chatty (start-up notes, security advice); the CLI shows only errors.
RAY_LOG_LEVEL = logging.ERROR


class RayError(RuntimeError):
    """Ray cannot do what was asked; the message says what to change."""


class RayAddressError(RayError):
    """A Ray address is malformed, unreachable, or Ray is not installed."""


class RayCapacityError(RayError):
    """The cluster could not place the workers asked for (too few CPUs or GPUs free)."""


def check_address(address: str | None) -> str | None:
    """``address`` if it has the shape of a Ray address (``None`` and ``local`` mean local)."""
    if address is None or address == LOCAL:
        return None
    text = address.strip()
    if text == "auto":
        return text
    host, _, port = _host_port(text)
    if not host or not port.isdigit():
        raise RayAddressError(
            f"{address!r} is not a Ray address: give HOST:PORT, ray://HOST:PORT, auto or local"
        )
    return text


def _host_port(address: str) -> tuple[str, str, str]:
    bare = address.split("://", 1)[1] if "://" in address else address
    host, colon, port = bare.rpartition(":")
    return host.strip("[]"), colon, port.split("/", 1)[0]


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`RayAddressError` unless something accepts connections at ``address``."""
    host, _, port = _host_port(address)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as error:
        raise RayAddressError(
            f"cannot reach a Ray cluster at {address}: {error.strerror or error}; start one with "
            "`ray start --head` or give the head node's HOST:PORT"
        ) from None


def ray_module() -> Any:
    """The ``ray`` module, or a clear error telling how to install it."""
    try:
        import ray
    except ImportError:
        raise RayAddressError(
            "Ray is not installed: pip install 'societas[ray]' (or pip install ray)"
        ) from None
    return ray


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, initialised for the block: a local instance, or a connection to ``address``.

    A session that was already initialised (a test fixture, a notebook) is reused and left
    running; one started here is shut down at the end. ``num_cpus`` sizes a local instance.
    """
    ray = ray_module()
    if ray.is_initialized():
        yield ray
        return
    target = check_address(address)
    if target is not None and target != "auto":
        probe(target)
    options: dict[str, Any] = {
        "logging_level": RAY_LOG_LEVEL,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if target is None:
        options.update(include_dashboard=False, num_cpus=num_cpus)
    if variables := patience_variables():  # a cluster's workers do not share our environment
        options["runtime_env"] = {"env_vars": variables}
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayAddressError(f"cannot start or join Ray at {address or LOCAL}: {error}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


async def ray_result(reference: Any) -> Any:
    """Await a Ray result; a remote call's own exception is re-raised as itself, not wrapped.

    A worker that died becomes an :class:`~societas.llm.types.LLMUnavailableError`, any other
    failure of Ray itself a :class:`RayError`.
    """
    ray = ray_module()
    try:
        return await reference
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.RayActorError as error:
        raise LLMUnavailableError(f"a Ray worker died: {error}") from None
    except ray.exceptions.RayError as error:  # e.g. a result that cannot be unpickled here
        raise RayError(f"Ray failed: {type(error).__name__}: {error}") from None


async def placed(actors: list[Any], what: str, timeout_s: float = PLACEMENT_TIMEOUT_S) -> None:
    """Wait until Ray has started ``actors``; if it cannot within ``timeout_s``, stop them and
    raise :class:`RayCapacityError` (Ray itself would wait for resources forever)."""
    ray = ray_module()
    ready = asyncio.gather(*(ray_result(actor.__ray_ready__.remote()) for actor in actors))
    try:
        await asyncio.wait_for(ready, timeout_s)
    except TimeoutError:
        for actor in actors:
            ray.kill(actor)
        free = ray.available_resources()
        raise RayCapacityError(
            f"Ray could not start {len(actors)} {what} within {timeout_s:g} s; free now: "
            f"{free.get('CPU', 0):g} CPUs, {free.get('GPU', 0):g} GPUs. Ask for fewer, or "
            "free or add resources"
        ) from None
