"""Run hibernate and its peers side by side on one session; write a table.

    python benchmarks/run.py --scale 1.0 --repeat 1 [--out docs/benchmarks.md]

Each save and each load runs in a fresh process (benchmarks/worker.py). The page cache is
dropped before each load when the machine allows it (root); the table says whether it was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = ["raw", "hibernate", "hibernate-mmap", "hibernate-fast", "hibernate-small", "pickle",
         "cloudpickle", "joblib", "dill"]


def drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        return True
    except OSError:
        return False


def step(args: list[str], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, os.path.join(HERE, "worker.py"), *args],
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--out", default=None)
    ap.add_argument("--warm", action="store_true", help="do not drop the page cache")
    a = ap.parse_args()
    tools = a.tools.split(",")
    results: dict[str, dict[str, list]] = {t: {"save": [], "load": [], "save_mem": [],
                                               "load_mem": [], "load_extra": [], "size": []}
               for t in tools}
    cold = True
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        raw_bytes = None
        for _ in range(a.repeat):
            for tool in ["hibernate"] + [t for t in tools if t != "hibernate"]:
                if tool not in tools:
                    continue
                path = os.path.join(tmp, f"{tool}.bin")
                env = {"RAW_BYTES": str(raw_bytes)} if tool == "raw" else None
                if tool == "raw" and raw_bytes is None:
                    continue
                s = step(["save", tool, path, str(a.scale)], env)
                if "error" in s:
                    results[tool].setdefault("error", []).append(s["error"])
                    continue
                if tool == "hibernate":
                    raw_bytes = s["size"]
                cold = not a.warm and drop_caches() and cold
                ld = step(["load", tool, path])
                r = results[tool]
                r["save"].append(s["seconds"])
                r["save_mem"].append(s["peak_added"])
                r["size"].append(s["size"])
                if "error" in ld:
                    r.setdefault("error", []).append("load: " + ld["error"])
                else:
                    r["load"].append(ld["seconds"])
                    r["load_mem"].append(ld["peak_added"])
                    r["load_extra"].append(ld["peak_added"] - ld.get("retained", 0))
                os.unlink(path)
    print(render(results, a, cold))
    if a.out:
        with open(a.out, "a") as f:
            f.write(render(results, a, cold) + "\n")


def render(results: dict, a: argparse.Namespace, cold: bool) -> str:
    med = statistics.median
    base = results.get("raw") or {}
    lines = [f"`python benchmarks/run.py --scale {a.scale} --repeat {a.repeat}` "
             f"(medians of {a.repeat}; loads from a {'cold' if cold else 'warm'} page cache)",
             "", "| tool | file MiB | save s | save / raw | save peak +MiB | load s | "
             "load / raw | load peak +MiB | load peak over result MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for tool, r in results.items():
        if not r["save"]:
            lines.append(f"| {tool} | failed: {'; '.join(r.get('error', []))[:120]} |")
            continue

        def ratio(k: str, r: dict = r) -> str:
            return f"{med(r[k]) / med(base[k]):.2f}x" if base.get(k) and r[k] else ""
        load = f"{med(r['load']):.2f}" if r["load"] else "failed"
        lines.append(
            f"| {tool} | {med(r['size']) / 2**20:.0f} | {med(r['save']):.2f} | {ratio('save')} | "
            f"{med(r['save_mem']) / 2**20:.0f} | {load} | {ratio('load')} | "
            f"{(med(r['load_mem']) / 2**20 if r['load_mem'] else 0):.0f} | "
            f"{(med(r['load_extra']) / 2**20 if r['load_extra'] else 0):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
