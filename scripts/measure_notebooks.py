"""Measure resume on notebooks written by others: interrupt each at the middle of its code
cells, restore it in a fresh kernel with replay, finish it, and compare the outputs with an
uninterrupted run (``tests/notebook_harness.py``; the notebook's directory is copied into
the run directory first, so notebooks that read files next to them run as they would).

    python scripts/measure_notebooks.py DIR [DIR ...] [--json OUT] [--timeout S] [--replay all]

Notebooks whose uninterrupted run fails after the split (they raise on purpose, exit the
kernel, wait for input, need packages, files or a network not here) are counted as "not
applicable", with the first error after the split: there is no reference to compare with.
A cell that differs is run again in a second uninterrupted run: if it gives other outputs
there too (times, progress bars, unseeded random numbers) it is not compared, and said so.
Prints one line per notebook and a summary. The kernel is ``python3`` of the interpreter
that runs this script (run it with a venv's python to measure with that venv's packages).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from notebook_harness import code_cells, interrupt_and_resume  # noqa: E402


def _first_error(cells: list[list[tuple[str, str]]], after: list[str],
                 split: int) -> str:
    for i, out in enumerate(cells):
        for kind, text in out:
            if kind == "error":
                return f"cell {split + i}: {text} in {after[i].strip()[:60]!r}"
    return ""


def measure(path: Path, timeout: int = 20, replay: bool | str = True) -> tuple[str, str]:
    try:
        code = [c for c in code_cells(path) if c.strip()]
    except Exception as e:
        return "not applicable", f"unreadable ({type(e).__name__})"
    if len(code) < 2:
        return "not applicable", "fewer than two code cells"
    split = len(code) // 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            got = interrupt_and_resume(code, split, Path(tmp), replay=replay,
                                       timeout=timeout, siblings=path.parent)
        except Exception as e:
            return "not applicable", (f"the notebook does not run here ({type(e).__name__}: "
                                      f"{str(e).splitlines()[0][:100] if str(e) else ''})")
    if any(kind == "error" for out in got.reference for kind, _ in out):
        return "not applicable", ("its own run raises after the split ("
                                  f"{_first_error(got.reference, got.after, split)})")
    if any(kind == "error" for kind, _ in got.save):
        return "save failed", str(got.save)[:200]
    if any(kind == "error" for kind, _ in got.load):
        return "load failed", str(got.load)[:200]
    bad = got.differing()
    noisy: list[int] = []
    if bad:  # a second uninterrupted run: which of those cells differ on every run anyway?
        with tempfile.TemporaryDirectory() as tmp:
            again = interrupt_and_resume(code, split, Path(tmp), replay=replay,
                                         timeout=timeout, siblings=path.parent).reference
        noisy = [i for i in bad if got.reference[i] != again[i]]
        bad = [i for i in bad if got.reference[i] == again[i]]
        if len(noisy) == len(got.after):
            return "not applicable", ("not deterministic: every cell after the split gives "
                                      "other outputs on every run")
    if bad:
        i = bad[0]
        return "differs", (f"{len(bad)} cell(s); first cell {split + i}: "
                           f"{got.after[i][:80]!r}: {got.reference[i]!r:.150} != "
                           f"{got.resumed[i]!r:.150}")
    note = (f"; not compared, other outputs on every run (times, progress bars): cells "
            f"{', '.join(str(split + i) for i in noisy)}" if noisy else "")
    return "equal", f"split at {split} of {len(code)}{note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--timeout", type=int, default=20, help="seconds per cell")
    parser.add_argument("--replay", choices=["yes", "all", "no"], default="yes")
    args = parser.parse_args()
    replay: bool | str = {"yes": True, "all": "all", "no": False}[args.replay]
    results = {}
    for d in args.dirs:
        for path in sorted(d.rglob("*.ipynb")):
            verdict, detail = measure(path, args.timeout, replay)
            results[str(path)] = (verdict, detail)
            print(f"{verdict:15s} {path}  ({detail})", flush=True)
    counts: dict[str, int] = {}
    for verdict, _ in results.values():
        counts[verdict] = counts.get(verdict, 0) + 1
    print("summary:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
