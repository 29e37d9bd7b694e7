"""The native decoders (numpy, pandas, arrow, polars ``load(meta, buffers)``) fuzzed briefly:
fuzz/fuzz_decoders.py dumps real values, mutates their meta, buffers and Arrow IPC streams,
and loads each mutant (as from a trusted and from an untrusted file) in a child process
under RLIMIT_AS and a CPU limit. Any crash, memory-limit hit, hang, file opened or process
spawn / unpickling during a load fails. A panic (a BaseException that is not an Exception,
from polars) is reported but does not fail: loads turn it into a failed entry
(test_native_guard.py), and it is the library's bug to fix.

Seed: HIBERNATE_FAULT_SEED (default 20240611); length: HIBERNATE_DECODER_FUZZ_SECONDS
(default 15). A failing input is saved; replay it with
``python fuzz/fuzz_decoders.py --replay FILE``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("HIBERNATE_FAULT_SEED", "20240611"))
SECONDS = float(os.environ.get("HIBERNATE_DECODER_FUZZ_SECONDS", "15"))


def _fuzzer() -> types.ModuleType:
    name = "hibernate_fuzz_decoders"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "fuzz" / "fuzz_decoders.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_native_decoders_survive_mutated_input(tmp_path: Path) -> None:
    for lib in ("numpy", "pandas", "pyarrow", "polars"):
        pytest.importorskip(lib)
    fuzz = _fuzzer()
    out = tmp_path / "findings"
    stats = fuzz.run(SECONDS, tmp_path / "work", seed=SEED, out=out, minimize=False)
    print(stats.summary())
    # a panic (polars' PanicException) is a bug of the library, and loads turn it into a failed
    # entry (tests/security/test_native_guard.py): counted and shown, not failed here
    findings = [f for f in stats.findings.values() if f.cls != "panic"]
    report = "\n".join(
        f"[{f.cls}] x{f.count} {f.signature}\n{fuzz.describe(f.example)}\n"
        f"  {f.outcome.detail}\n  saved as {f.path}" for f in findings)
    if findings:
        pytest.fail(f"{len(findings)} decoder finding(s); replay one with "
                    f"python fuzz/fuzz_decoders.py --replay FILE\n{report}", pytrace=False)
    for name in fuzz.SERIALIZERS:  # the harness ran each decoder, both ways
        assert stats.tried[name] >= 40, stats.summary()
        assert stats.outcomes[(name, "ok")] > 0 and stats.outcomes[(name, "error")] > 0, \
            stats.summary()
