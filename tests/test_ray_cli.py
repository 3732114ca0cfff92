"""The ``--ray [ADDRESS]`` option: parsing, and clear errors for bad or unreachable addresses.

No Ray instance is started here: every address is refused before Ray is asked.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from societas.cli.app import app
from societas.distributed.ray_options import with_ray_defaults
from societas.distributed.replicates import replicate_seed, replicate_spec
from societas.distributed.session import RayAddressError, check_address, probe
from societas.experiments.spec import EXAMPLE, experiment_from_text


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["duo", "--ray"], ["duo", "--ray=local"]),
        (["--ray", "duo"], ["--ray=local", "duo"]),
        (["--ray", "--model-servers", "2", "duo"], ["--ray=local", "--model-servers", "2", "duo"]),
        (["duo", "--ray", "10.0.0.5:6379"], ["duo", "--ray", "10.0.0.5:6379"]),
        (["--ray", "ray://head:10001", "duo"], ["--ray", "ray://head:10001", "duo"]),
        (["--ray", "auto"], ["--ray", "auto"]),
        (["--ray=10.0.0.5:6379"], ["--ray=10.0.0.5:6379"]),
    ],
)
def test_a_bare_ray_flag_means_local_and_never_eats_the_next_argument(
    args: list[str], expected: list[str]
) -> None:
    assert with_ray_defaults(args) == expected


def test_addresses_are_checked_for_shape() -> None:
    assert check_address(None) is None and check_address("local") is None
    assert check_address("auto") == "auto"
    assert check_address("ray://head:10001") == "ray://head:10001"
    for bad in ("duo", "head:", "head:port", "ray://head"):
        with pytest.raises(RayAddressError, match="not a Ray address"):
            check_address(bad)


def test_an_unreachable_address_fails_fast() -> None:
    port = closed_port()
    with pytest.raises(RayAddressError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        probe(f"127.0.0.1:{port}")


def test_run_with_an_unreachable_cluster_exits_with_a_message(tmp_path: Path) -> None:
    port = closed_port()
    args = ["run", "--ray", f"127.0.0.1:{port}", "duo", "--model", "fake:x"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_experiment_with_a_malformed_address_exits_with_a_message(tmp_path: Path) -> None:
    file = tmp_path / "framing.yaml"
    file.write_text(EXAMPLE)
    result = CliRunner().invoke(app, ["experiment", str(file), "--model", "fake:x", "--ray=duo"])
    assert result.exit_code == 2, result.output
    assert "not a Ray address" in result.output


def test_model_servers_need_ray(tmp_path: Path) -> None:
    args = ["run", "duo", "--model-servers", "2", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--model-servers needs --ray" in result.output


def test_replicates_get_their_own_reproducible_seeds() -> None:
    spec = experiment_from_text(EXAMPLE)
    assert replicate_spec(spec, 0) is spec
    second = replicate_spec(spec, 1)
    assert second.seed == replicate_seed(7, 1) != 7
    assert second.model_dump(exclude={"seed"}) == spec.model_dump(exclude={"seed"})
    assert f"seed: {second.seed}" in second.source_text
    assert len({replicate_seed(7, r) for r in range(50)}) == 50
