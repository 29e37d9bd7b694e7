"""One measured step in a fresh process: ``worker.py save|load TOOL PATH SCALE``.

Prints one JSON line: seconds for the step alone and peak memory the step added (VmHWM
after the step minus VmRSS before it, from /proc/self/status).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


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


def class_and_function() -> None:
    """Interactive code the session carries (defined in __main__)."""
    g = globals()

    exec("def score(row):\n    return row * 2\n"
         "class Model:\n    def __init__(self):\n        self.w = [1.0, 2.0]\n"
         "model = Model()\n", g)


def save(tool: str, path: str, scale: float) -> None:
    from session import build

    build(globals(), scale, unpicklables=tool.startswith("hibernate"))
    class_and_function()
    names = ["df", "arrays", "image", "lookup", "pairs", "score", "Model", "model"]
    if tool == "raw":
        size = int(os.environ["RAW_BYTES"])
        chunk = b"\x01" * (64 << 20)
    before = _status("VmRSS")
    _reset_peak()
    t = time.perf_counter()
    if tool.startswith("hibernate"):
        import hibernate

        compression = {"hibernate-fast": "fast", "hibernate-small": "small"}.get(tool)
        hibernate.save(path, compression=compression, progress=False)
    elif tool == "joblib":
        import joblib

        joblib.dump({n: globals()[n] for n in names if n not in ("score", "Model", "model")},
                    path)
    elif tool == "dill":
        import dill

        dill.dump_module(path)
    elif tool in ("pickle", "cloudpickle"):
        import pickle

        import cloudpickle

        mod = pickle if tool == "pickle" else cloudpickle
        data = {n: globals()[n] for n in names if tool == "cloudpickle" or n not in
                ("score", "Model", "model")}
        with open(path, "wb") as f:
            mod.dump(data, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())
    elif tool == "raw":
        with open(path, "wb", buffering=0) as f:
            left = size
            while left > 0:
                left -= f.write(memoryview(chunk)[: min(left, len(chunk))])
            os.fsync(f.fileno())
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_added": _status("VmHWM") - before,
                      "size": os.path.getsize(path)}))


def load(tool: str, path: str) -> None:
    before = _status("VmRSS")
    t = time.perf_counter()
    if tool.startswith("hibernate"):
        import hibernate

        hibernate.load(path, trust=True, mmap=tool == "hibernate-mmap", progress=False)
    elif tool == "joblib":
        import joblib

        globals().update(joblib.load(path))
    elif tool == "dill":
        import dill

        dill.load_module(path)
    elif tool in ("pickle", "cloudpickle"):
        import pickle

        with open(path, "rb") as f:
            globals().update(pickle.load(f))
    elif tool == "raw":
        with open(path, "rb", buffering=0) as f:
            buf = bytearray(os.path.getsize(path))
            f.readinto(buf)
    seconds = time.perf_counter() - t
    import gc

    gc.collect()
    # retained: what the loaded session itself occupies; peak minus retained is what the
    # load needed on top of its result (buffers read and freed, pickle streams, copies)
    print(json.dumps({"seconds": seconds, "peak_added": _status("VmHWM") - before,
                      "retained": _status("VmRSS") - before}))


if __name__ == "__main__":
    step, tool, path = sys.argv[1:4]
    if step == "save":
        save(tool, path, float(sys.argv[4]))
    else:
        load(tool, path)
