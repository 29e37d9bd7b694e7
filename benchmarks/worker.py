"""One measured step in a fresh process.

    worker.py save TOOL PATH SCALE [SESSION]     (SESSION: classic (default) or analyst)
    worker.py load TOOL PATH

Prints one JSON line. A save: ``seconds`` for importing the tool and saving (the tool's
import alone in ``import_seconds``), the file's ``size``, the peak memory the save added
(``peak_added``: VmHWM after the step minus VmRSS before it, from /proc/self/status) and,
for hibernate, the session's ``data`` size. A load: ``seconds`` = ``import_seconds``
(importing the tool and the libraries the session's values need, numpy, pandas and pyarrow,
as a fresh process must) + ``load_seconds`` (the load call alone); ``peak_added`` and
``retained`` measured around the load call alone; ``lazy_imports``: modules the load call
imported all the same.

``raw`` is the reference: a save writes and fsyncs the bytes of the file named by
``RAW_SOURCE`` (an environment variable: hibernate's file, read into memory before the clock
starts; no session is built); a load reads the file into fresh memory (an anonymous mapping,
so nothing is zero-filled twice) and imports nothing.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# what a fresh process imports before loading a session of either kind, per tool
SESSION_LIBS = ["numpy", "pandas", "pyarrow"]
# (and the modules the tool itself imports lazily on a load, so that "imports excluded" means
# it; the load reports any module it imported all the same in ``lazy_imports``)
TOOL_LIBS = {"hibernate": ["hibernate", "hibernate.serializers._numpy",
                           "hibernate.serializers._pandas", "blake3", "platformdirs",
                           "importlib.metadata"],
             "pickle": ["pickle"], "cloudpickle": ["pickle", "cloudpickle"],
             "joblib": ["joblib"], "dill": ["dill", "pickletools"], "raw": ["mmap"]}
for _tool in ("hibernate-fast", "hibernate-small"):
    TOOL_LIBS[_tool] = TOOL_LIBS["hibernate"] + ["zstandard"]
TOOL_LIBS["hibernate-mmap"] = TOOL_LIBS["hibernate"]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def save(tool: str, path: str, scale: float, session: str = "classic") -> None:
    from session import CODE, build_session, data_bytes, data_names

    out: dict = {}
    g = globals()
    if tool == "raw":
        # the bytes of hibernate's file, in memory as a session's data is (read untimed)
        import mmap

        size = os.path.getsize(os.environ["RAW_SOURCE"])
        source = mmap.mmap(-1, max(size, 1))
        with open(os.environ["RAW_SOURCE"], "rb", buffering=0) as f:
            done = 0
            while done < size:
                done += f.readinto(memoryview(source)[done:size]) or size
    else:
        build_session(session, g, scale, unpicklables=tool.startswith("hibernate"))
    names = data_names(session)
    code = CODE[session]
    gc.collect()
    before = _status("VmRSS")
    _reset_peak()
    t = time.perf_counter()
    if tool.startswith("hibernate"):
        import hibernate

        imported = time.perf_counter()
        compression = {"hibernate-fast": "fast", "hibernate-small": "small"}.get(tool)
        hibernate.save(path, compression=compression, progress=False)
    elif tool == "joblib":
        import joblib

        imported = time.perf_counter()
        joblib.dump({n: g[n] for n in names}, path)
    elif tool == "dill":
        import dill

        imported = time.perf_counter()
        dill.dump_module(path)
    elif tool in ("pickle", "cloudpickle"):
        import pickle

        import cloudpickle

        imported = time.perf_counter()
        mod = pickle if tool == "pickle" else cloudpickle
        # pickle cannot restore __main__ code in another process: data only
        data = {n: g[n] for n in (names if tool == "pickle" else names + code)}
        with open(path, "wb") as f:
            mod.dump(data, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())
    elif tool == "raw":
        imported = time.perf_counter()
        with open(path, "wb", buffering=0) as f:
            view, done = memoryview(source), 0
            while done < size:
                done += f.write(view[done:min(size, done + (64 << 20))])
            os.fsync(f.fileno())
    else:
        raise SystemExit(f"unknown tool {tool}")
    end = time.perf_counter()
    out.update({"seconds": end - t, "import_seconds": imported - t,
                "peak_added": _status("VmHWM") - before, "size": os.path.getsize(path)})
    if tool == "hibernate":  # after the measurement: sizing pickles the small objects
        out["data"] = data_bytes(g, data_names(session))
    print(json.dumps(out))


def load(tool: str, path: str) -> None:
    import importlib

    g = globals()
    libs = (SESSION_LIBS if tool != "raw" else []) + TOOL_LIBS[tool]
    t = time.perf_counter()
    for lib in libs:
        importlib.import_module(lib)
    imported = time.perf_counter()
    modules = set(sys.modules)
    gc.collect()
    before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    if tool.startswith("hibernate"):
        import hibernate

        hibernate.load(path, trust=True, mmap=tool == "hibernate-mmap", progress=False)
    elif tool == "joblib":
        import joblib

        g.update(joblib.load(path))
    elif tool == "dill":
        import dill

        dill.load_module(path)
    elif tool in ("pickle", "cloudpickle"):
        import pickle

        with open(path, "rb") as f:
            g.update(pickle.load(f))
    elif tool == "raw":
        import mmap

        size = os.path.getsize(path)
        g["buf"] = buf = mmap.mmap(-1, max(size, 1))
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as f:
            done = 0
            while done < size:
                n = f.readinto(view[done:size])
                if not n:
                    break
                done += n
        view.release()
    else:
        raise SystemExit(f"unknown tool {tool}")
    end = time.perf_counter()
    peak = _status("VmHWM") - before
    lazy = sorted(set(sys.modules) - modules)
    gc.collect()
    # retained: what the loaded session itself occupies; peak minus retained is what the
    # load needed on top of its result (buffers read and freed, pickle streams, copies)
    print(json.dumps({"seconds": end - t, "import_seconds": imported - t,
                      "load_seconds": end - start, "peak_added": peak,
                      "retained": _status("VmRSS") - before, "lazy_imports": lazy}))


if __name__ == "__main__":
    step, tool, path = sys.argv[1:4]
    if step == "save":
        save(tool, path, float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "classic")
    else:
        load(tool, path)
