"""Loopback networking for tests that start servers or need an address nothing answers on."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
