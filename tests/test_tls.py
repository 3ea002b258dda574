"""TLS: verification is on by default; --ca-bundle trusts an appliance's own CA; --insecure
turns verification off with a warning. Against the simulator serving HTTPS on 127.0.0.1."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from reanalyzer.errors import ExitCode, MisconfiguredError, UsageError
from reanalyzer.run import job
from reanalyzer.settings import load_settings
from reanalyzer.simulator import RunningSimulator, SimulatorConfig, start_simulator, write_input

TOKEN = "tok-tls-4a5b6c7d8e"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
async def https_sim(certificate: tuple[Path, Path]) -> AsyncIterator[RunningSimulator]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    sim = await start_simulator(SimulatorConfig(token=TOKEN, samples=50, seed=2),
                                ssl_context=context)
    yield sim
    await sim.aclose()


async def run(sim: RunningSimulator, tmp_path: Path, **extra: object) -> int:
    path = tmp_path / "hashes.txt"
    write_input(path, sim.world, 100, seed=2)
    settings = load_settings({"url": sim.url, "token": TOKEN, "job_dir": tmp_path / "job",
                              **extra})
    return await job.send_job(settings, [str(path)])


async def test_an_unknown_certificate_is_refused(
    https_sim: RunningSimulator, tmp_path: Path
) -> None:
    """By default a certificate no trusted CA signed stops the job (exit 2) and says how to
    trust it, instead of being retried as an outage."""
    with pytest.raises(MisconfiguredError, match="--ca-bundle") as stopped:
        await run(https_sim, tmp_path)
    assert stopped.value.exit_code == ExitCode.USAGE


async def test_ca_bundle_trusts_the_appliance(
    https_sim: RunningSimulator, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """With --ca-bundle naming the appliance's CA, the job runs with verification on."""
    assert await run(https_sim, tmp_path, ca_bundle=certificate[0]) == ExitCode.OK


async def test_insecure_runs_and_warns(https_sim: RunningSimulator, tmp_path: Path) -> None:
    """--insecure skips verification, and says so in the log."""
    with capture_logs() as logs:
        assert await run(https_sim, tmp_path, insecure=True) == ExitCode.OK
    assert any(e["event"] == "client.tls_verification_disabled" for e in logs)


async def test_an_unreadable_ca_bundle_is_a_usage_error(
    https_sim: RunningSimulator, tmp_path: Path
) -> None:
    """A --ca-bundle that is not PEM certificates is a usage error naming the setting."""
    bogus = tmp_path / "bundle.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="ca_bundle"):
        await run(https_sim, tmp_path, ca_bundle=bogus)
