"""Run hibernate and its peers side by side on the benchmark sessions; print tables and
issue #15's targets.

    python benchmarks/run.py --session both --scales 0.25,1,2 --repeat 5   (the defaults)
    python benchmarks/run.py --session analyst --scale 1 --repeat 3 --tools raw,hibernate,pickle

Sessions (benchmarks/session.py): ``classic`` (the original one) and ``analyst`` (shared
data, a DataFrame inside a dict, many small objects). Each save and each load runs in a fresh
process (benchmarks/worker.py). Within a repeat every tool saves then loads once, the tools
alternating (hibernate first, the others in an order rotated each repeat); the tables give
medians over the repeats. The page cache is dropped before each load when the machine
allows it (root); the table says whether it was. To measure a fixed version while the
checkout changes, point PYTHONPATH at a copy of its src (the header says which one ran).

``raw`` is the reference: save = write + fsync of the bytes of hibernate's file (of the same
repeat, read into memory before the clock starts); load = read them back cold into fresh
memory, importing nothing. A load's time is reported with the
imports a fresh process pays (the tool, numpy, pandas, pyarrow) and without them.
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
LOAD_PEERS = ["pickle", "cloudpickle", "dill"]
MiB = 2**20
KEYS = ["save", "save_import", "save_mem", "size", "data", "load", "load_import", "load_only",
        "load_mem", "load_retained", "load_extra", "lazy"]


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


def measure(session: str, scale: float, tools: list[str], repeat: int, warm: bool,
            log=None) -> tuple[dict[str, dict[str, list]], bool]:
    """Every tool saves and loads ``session`` at ``scale`` ``repeat`` times, alternating."""
    results: dict[str, dict[str, list]] = {t: {k: [] for k in KEYS} for t in tools}
    cold = not warm
    others = [t for t in tools if t != "hibernate"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        reference = os.path.join(tmp, "reference.bin")  # hibernate's file, for raw to write
        for i in range(repeat):
            k = i % len(others) if others else 0
            order = (["hibernate"] if "hibernate" in tools else []) + others[k:] + others[:k]
            for tool in order:
                r = results[tool]
                path = os.path.join(tmp, f"{tool}.bin")
                if tool == "raw" and not os.path.exists(reference):
                    r.setdefault("error", []).append("no hibernate file to write")
                    continue
                env = {"RAW_SOURCE": reference} if tool == "raw" else None
                os.sync()
                s = step(["save", tool, path, str(scale), session], env)
                if "error" in s:
                    r.setdefault("error", []).append(s["error"])
                    if os.path.exists(path):
                        os.unlink(path)
                    continue
                if tool == "hibernate":
                    r["data"].append(s["data"])
                if not warm:
                    cold = drop_caches() and cold
                ld = step(["load", tool, path])
                r["save"].append(s["seconds"])
                r["save_import"].append(s["import_seconds"])
                r["save_mem"].append(s["peak_added"])
                r["size"].append(s["size"])
                if "error" in ld:
                    r.setdefault("error", []).append("load: " + ld["error"])
                else:
                    r["load"].append(ld["seconds"])
                    r["load_import"].append(ld["import_seconds"])
                    r["load_only"].append(ld["load_seconds"])
                    r["load_mem"].append(ld["peak_added"])
                    r["load_retained"].append(ld["retained"])
                    r["load_extra"].append(ld["peak_added"] - ld["retained"])
                    r["lazy"].append(ld.get("lazy_imports", []))
                if tool == "hibernate" and "raw" in tools:
                    os.replace(path, reference)
                else:
                    os.unlink(path)
                if tool == "raw" and os.path.exists(reference):
                    os.unlink(reference)
                if log:
                    log(f"  {session} x{scale} run {i + 1}/{repeat} {tool}: save "
                        f"{s['seconds']:.2f} s, load "
                        + (f"{ld['seconds']:.2f} s ({ld['load_seconds']:.2f} s without "
                           "imports)" if "error" not in ld else "failed"))
    return results, cold


def med(xs: list) -> float:
    return statistics.median(xs)


def render(results: dict, session: str, scale: float, repeat: int, cold: bool) -> str:
    base = results.get("raw") or {}
    data = (results.get("hibernate") or {}).get("data")
    lines = [f"Session `{session}` at scale {scale:g}"
             + (f" (data {med(data) / MiB:.0f} MiB)" if data else "")
             + f": medians of {repeat}; loads from a {'cold' if cold else 'warm'} page cache",
             "", "| tool | file MiB | save s | save / raw | save peak +MiB | load s | "
             "of which imports s | load s w/o imports | load / raw w/o imports | "
             "load peak +MiB | loaded result MiB | load peak / result |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for tool, r in results.items():
        if not r["save"]:
            lines.append(f"| {tool} | failed: {'; '.join(r.get('error', []))[:120]} |")
            continue

        def ratio(k: str, kb: str | None = None, r: dict = r) -> str:
            kb = kb or k
            return f"{med(r[k]) / med(base[kb]):.2f}x" if base.get(kb) and r[k] else ""

        if r["load"]:
            load = (f"{med(r['load']):.2f} | {med(r['load_import']):.2f} | "
                    f"{med(r['load_only']):.2f} | {ratio('load_only')} | "
                    f"{med(r['load_mem']) / MiB:.0f} | {med(r['load_retained']) / MiB:.0f} | "
                    f"{_peak_ratio(r)}")
        else:
            load = "failed | | | | | | "
        lines.append(
            f"| {tool} | {med(r['size']) / MiB:.0f} | {med(r['save']):.2f} | {ratio('save')} | "
            f"{med(r['save_mem']) / MiB:.0f} | {load} |")
    errors = [f"{t}: {e}" for t, r in results.items() for e in sorted(set(r.get("error", [])))
              if r["save"]]
    if errors:
        lines += ["", "Failures in some runs: " + "; ".join(errors)[:600]]
    lazy = sorted({f"{t}: {', '.join(sorted({m for ms in r['lazy'] for m in ms}))}"
                   for t, r in results.items() if any(r["lazy"])})
    if lazy:
        lines += ["", "Modules a load imported on its own (inside 'w/o imports'): "
                  + "; ".join(lazy)[:600]]
    return "\n".join(lines)


def _peak_ratio(r: dict) -> str:
    if not r["load_retained"] or med(r["load_retained"]) <= 0:
        return ""
    return f"{med(r['load_mem']) / med(r['load_retained']):.2f}x"


def targets(results: dict, session: str, scale: float) -> str:
    """Issue #15's targets for hibernate (the default save and full load) on this run."""
    h, raw = results.get("hibernate") or {}, results.get("raw") or {}
    rows: list[tuple[str, str, bool | None]] = []

    def have(r: dict, k: str) -> bool:
        return bool(r.get(k))

    if have(h, "save") and have(raw, "save"):
        x = med(h["save"]) / med(raw["save"])
        rows.append(("save within 1.3x of a raw write + fsync",
                     f"{x:.2f}x ({med(h['save']):.2f} s / {med(raw['save']):.2f} s)", x <= 1.3))
    else:
        rows.append(("save within 1.3x of a raw write + fsync", "n/a", None))
    peers = {t: med(r["save"]) for t, r in results.items()
             if t != "raw" and not t.startswith("hibernate") and have(r, "save")}
    if have(h, "save") and peers:
        best = min(peers, key=lambda t: peers[t])
        failed = [t for t, r in results.items() if t != "raw" and not t.startswith("hibernate")
                  and not have(r, "save")]
        rows.append(("save faster than every peer",
                     f"{med(h['save']):.2f} s vs {best} {peers[best]:.2f} s (the fastest "
                     f"peer): {med(h['save']) / peers[best]:.2f}x"
                     + (f"; {', '.join(failed)} failed" if failed else ""),
                     med(h["save"]) < peers[best]))
    else:
        rows.append(("save faster than every peer", "n/a", None))
    peers = {t: med(results[t]["load"]) for t in LOAD_PEERS
             if t in results and have(results[t], "load")}
    if have(h, "load") and peers:
        best = min(peers, key=lambda t: peers[t])
        rows.append(("full load faster than pickle, cloudpickle and dill (imports included)",
                     f"{med(h['load']):.2f} s vs {best} {peers[best]:.2f} s (the fastest): "
                     f"{med(h['load']) / peers[best]:.2f}x", med(h["load"]) < peers[best]))
    else:
        rows.append(("full load faster than pickle, cloudpickle and dill (imports included)",
                     "n/a", None))
    if have(h, "load_only") and have(raw, "load_only"):
        x = med(h["load_only"]) / med(raw["load_only"])
        rows.append(("full load within 1.3x of a cold raw read (imports excluded)",
                     f"{x:.2f}x ({med(h['load_only']):.2f} s / {med(raw['load_only']):.2f} s)",
                     x <= 1.3))
    else:
        rows.append(("full load within 1.3x of a cold raw read (imports excluded)", "n/a",
                     None))
    if have(h, "save_mem") and have(h, "data"):
        x = med(h["save_mem"]) / med(h["data"])
        rows.append(("save's extra peak memory at most 10% of the session",
                     f"{med(h['save_mem']) / MiB:.0f} MiB = {100 * x:.1f}% of "
                     f"{med(h['data']) / MiB:.0f} MiB", x <= 0.10))
    else:
        rows.append(("save's extra peak memory at most 10% of the session", "n/a", None))
    if have(h, "load_mem") and have(h, "load_retained"):
        x = med(h["load_mem"]) / med(h["load_retained"])
        rows.append(("load's extra peak memory at most the loaded result",
                     f"{med(h['load_mem']) / MiB:.0f} MiB peak for a "
                     f"{med(h['load_retained']) / MiB:.0f} MiB result: {x:.2f}x",
                     round(x, 2) <= 1.0))
    else:
        rows.append(("load's extra peak memory at most the loaded result", "n/a", None))
    lines = [f"Targets (issue #15), hibernate on `{session}` at scale {scale:g}:", "",
             "| target | measured | |", "|---|---|---|"]
    for name, value, ok in rows:
        lines.append(f"| {name} | {value} | "
                     f"{'n/a' if ok is None else 'met' if ok else '**not met**'} |")
    return "\n".join(lines)


def _where() -> str:
    """Which hibernate the workers import (PYTHONPATH may point at a snapshot)."""
    out = subprocess.run([sys.executable, "-c", "import hibernate, os; "
                          "print(os.path.dirname(hibernate.__file__))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "nowhere: " + out.stderr.strip()[-200:]


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--session", choices=["classic", "analyst", "both"], default="both")
    ap.add_argument("--scales", default="0.25,1,2",
                    help="comma-separated scales (1 is about 1 GB)")
    ap.add_argument("--scale", type=float, default=None, help="one scale (overrides --scales)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--out", default=None, help="also append the tables to this file")
    ap.add_argument("--json", default=None, help="write every measurement to this file")
    ap.add_argument("--warm", action="store_true", help="do not drop the page cache")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a = ap.parse_args(argv)
    tools = [t for t in a.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tools: {', '.join(sorted(unknown))}")
    scales = [a.scale] if a.scale is not None else [float(s) for s in a.scales.split(",")]
    sessions = ["classic", "analyst"] if a.session == "both" else [a.session]

    def log(msg: str) -> None:
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    cmd = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = [f"`{cmd}`", "", f"hibernate from {_where()}", ""]
    print("\n".join(out), flush=True)
    everything = []
    for session in sessions:
        for scale in scales:
            log(f"{session} at scale {scale:g}, {a.repeat} repeats: {', '.join(tools)}")
            load_before = _loadavg()
            results, cold = measure(session, scale, tools, a.repeat, a.warm, log)
            text = (render(results, session, scale, a.repeat, cold) + "\n\n"
                    + targets(results, session, scale) + "\n\n"
                    + f"Load average (1 min) before and after: {load_before} -> {_loadavg()}\n")
            print(text, flush=True)
            out.append(text)
            everything.append({"session": session, "scale": scale, "repeat": a.repeat,
                               "cold": cold, "results": results})
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"command": cmd, "runs": everything}, f, indent=1)
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
