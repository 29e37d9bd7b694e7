"""Measure resume on notebooks written by others: interrupt each at the middle of its code
cells, restore it in a fresh kernel with replay, finish it, and compare the outputs with an
uninterrupted run (``tests/notebook_harness.py``).

    python scripts/measure_notebooks.py DIR [DIR ...] [--json OUT]

Notebooks whose uninterrupted run fails after the split (they raise on purpose, exit the
kernel, wait for input, need packages or files not here) are counted as "not applicable":
there is no reference to compare with. Prints one line per notebook and a summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from notebook_harness import code_cells, interrupt_and_resume  # noqa: E402


def measure(path: Path) -> tuple[str, str]:
    try:
        code = [c for c in code_cells(path) if c.strip()]
    except Exception as e:
        return "not applicable", f"unreadable ({type(e).__name__})"
    if len(code) < 2:
        return "not applicable", "fewer than two code cells"
    split = len(code) // 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            got = interrupt_and_resume(code, split, Path(tmp), timeout=20)
        except Exception as e:
            return "not applicable", f"the notebook does not run here ({type(e).__name__})"
    if any(kind == "error" for out in got.reference for kind, _ in out):
        return "not applicable", "its own run raises after the split"
    if any(kind == "error" for kind, _ in got.save):
        return "save failed", str(got.save)[:200]
    if any(kind == "error" for kind, _ in got.load):
        return "load failed", str(got.load)[:200]
    bad = got.differing()
    if bad:
        return "differs", f"cell {split + bad[0]}: {got.after[bad[0]][:80]!r}"
    return "equal", f"split at {split} of {len(code)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for d in args.dirs:
        for path in sorted(d.rglob("*.ipynb")):
            verdict, detail = measure(path)
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
