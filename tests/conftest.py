"""Shared fixtures: an isolated key and config dir, helpers that save and load in
separate, fresh Python processes (restore tests never load in the process that saved), and
a real S3 endpoint (moto's server, one per test session)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TEST_KEY = "68696265726e6174652d746573742d6b6579"  # hex of 18 bytes, as keys must be
STRANGER_KEY = "5354524e47522d" + "0f1e2d3c4b5a6978" * 2  # another valid key: someone else


@pytest.fixture(autouse=True)
def isolated_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                 ) -> None:
    """Every test signs with a known key and never touches the user's config directory."""
    monkeypatch.setenv("HIBERNATE_KEY", TEST_KEY)
    monkeypatch.setenv("HIBERNATE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


def run_python(code: str, *, cwd: Path, env: dict[str, str] | None = None,
               check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as the __main__ script of a fresh interpreter."""
    script = cwd / f"script_{abs(hash(code)) % 10**8}.py"
    script.write_text(textwrap.dedent(code))
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, str(script)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n--- stdout\n"
                             f"{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def run_json(code: str, *, cwd: Path, env: dict[str, str] | None = None) -> object:
    """Run ``code`` in a fresh process; it must print one JSON document as its last line."""
    out = run_python(code, cwd=cwd, env=env).stdout.strip().splitlines()
    return json.loads(out[-1])


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    """fresh.run(code) / fresh.json(code): run code as __main__ of a new interpreter."""

    class Fresh:
        path = tmp_path

        def run(self, code: str, **kw: object) -> subprocess.CompletedProcess[str]:
            return run_python(code, cwd=tmp_path, **kw)  # type: ignore[arg-type]

        def json(self, code: str, **kw: object) -> object:
            return run_json(code, cwd=tmp_path, **kw)  # type: ignore[arg-type]

    return Fresh()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3():  # type: ignore[no-untyped-def]
    """A real S3 endpoint: moto's server on 127.0.0.1 with a bucket "sessions";
    yields its endpoint, a boto3 client and s3fs storage options."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
             "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, **creds)
    client.create_bucket(Bucket="sessions")
    options = {"key": "testing", "secret": "testing", "default_block_size": 5 * 2**20,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    yield {"endpoint": endpoint, "client": client, "options": options}
    server.stop()


@pytest.fixture(scope="session")
def hibernate_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this tree, for tests that install hibernate into other environments."""
    out = tmp_path_factory.mktemp("wheel")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(out), str(root)], check=True, capture_output=True)
    return next(out.glob("hibernate-*.whl"))
