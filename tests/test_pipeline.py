"""The batch-to-serving example end to end, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pipeline"


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "pipeline.hib"
    subprocess.run([sys.executable, "-m", "hibernate", "run", "--save", str(path),
                    str(EXAMPLE / "batch.py")], check=True, cwd=tmp_path, timeout=120,
                   capture_output=True)
    proc = subprocess.Popen([sys.executable, str(EXAMPLE / "serve.py"), str(path), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:"), proc.stderr.read()
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_service_answers_from_the_batch_session(service: str) -> None:
    expected = runpy.run_path(str(EXAMPLE / "batch.py"))  # the same deterministic job
    status, body = get(service + "/predict?temp=25&promo=1")
    assert status == 200
    assert body["units"] == pytest.approx(expected["model"].predict(25, 1), abs=1e-9)
    assert body["units"] == pytest.approx(50 + 2.5 * 25 + 30, abs=1.0)
    status, body = get(service + "/store/north")
    row = expected["store_stats"].loc["north"]
    assert status == 200 and body == {"mean": pytest.approx(float(row["mean"])),
                                      "count": int(row["count"])}
    assert get(service + "/store/nowhere")[0] == 404
    assert get(service + "/predict?temp=x")[0] == 400
    status, info = get(service + "/info")
    assert info["loaded"] == ["model", "store_stats"]
    assert {"sales", "scratch", "model", "store_stats"} <= set(info["saved"])
