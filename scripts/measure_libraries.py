"""Measure how well hibernate restores sessions built by code written by others: the test
modules of libraries (e.g. dill, jsonpickle, joblib) taken from their PyPI sdists.

    python scripts/measure_libraries.py DIR [--json OUT] [--only SUBSTR] [--no-probes]
                                            [--main-file] [--keep]

DIR holds unpacked sdists (``DIR/dill-0.4.1/...``). Every ``test_*.py`` / ``*_test.py``
under a ``test``/``tests`` directory is one session, measured in three fresh processes:

1. **save**: the module is run as ``__main__`` exactly as ``hibernate run --save X.hib
   MODULE`` runs it (``hibernate._run.run_script``: top-level statements recorded as cells,
   its ``if __name__ == "__main__":`` block included, a post-mortem on a crash). Then every
   variable's *fingerprint* is taken (below), then its zero-argument ``test*`` functions and
   its ``unittest.TestCase`` tests are called as *probes* (each outcome recorded).
2. **load**: a fresh interpreter makes a fresh ``__main__`` module (no ``__file__``, as a
   fresh REPL has none; ``--main-file`` sets it to the script),
   ``hibernate.load(X.hib, namespace=it)`` with default trust (the file is signed with the
   same key), fingerprints every restored variable and compares it
   with the original's, then calls the same probes on the restored functions and classes.
3. **replay**: the same with ``load(..., replay=True)``.

A fingerprint is a deterministic text of a value's type, state and code, compared across
processes: builtin data by repr (containers element by element, sets sorted); functions by
qualified name, bytecode digest, constants, defaults, closure cell contents and ``__dict__``;
classes defined in the session by their bases and ``__dict__`` (sorted by name; without
``__slotnames__``, the cache ``copyreg`` adds when a class's instances are pickled); properties,
class and static methods by their functions; other objects by their type,
their repr when the type defines one (memory addresses masked), ``__dict__`` and slots,
or else their ``__reduce_ex__`` state; numpy arrays by dtype, shape and a digest of their
bytes; open files by mode, ``closed`` and position. "equal" means equal fingerprints;
"differs" means not; "not comparable" means a fingerprint raised on either side.

Each child runs with the sdist's root and the test package's import root on PYTHONPATH, in
its own scratch working directory (shared by the three processes of one module, as a user's
project directory is), with a temporary ``HIBERNATE_CONFIG_DIR`` and a random temporary
``HIBERNATE_KEY``: the user's own key is never read or written. Children run one at a time.
A child that dies by a signal is reported as a CRASH, with the command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SAVE_TIMEOUT = 240   # seconds for a module's run + save + fingerprints + probes
LOAD_TIMEOUT = 240
PROBE_SECONDS = 15   # per probe (SIGALRM)
PROBE_BUDGET = 90    # per process, all probes together


# --------------------------------------------------------------------------- fingerprints

_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_MAX_DEPTH = 6
_MAX_ITEMS = 200


def _tname(t: type) -> str:
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"


def _short(text: str, limit: int = 400) -> str:
    import hashlib

    if len(text) <= limit:
        return text
    return f"{text[:120]}…[{len(text)} chars sha1 {hashlib.sha1(text.encode()).hexdigest()[:12]}]"


def _masked_repr(v: object) -> str:
    return _short(_ADDR.sub("0x?", repr(v)))


def fingerprint(value: object) -> str:
    """Deterministic text of ``value``'s type, state and code (see the module docstring)."""
    return _fp(value, 0, set(), [4000])


def _fp(v: Any, depth: int, path: set[int], budget: list[int]) -> str:  # noqa: C901
    import hashlib
    import types

    budget[0] -= 1
    if budget[0] < 0:
        return "…"
    t = type(v)
    if v is None or t in (bool, int, float, complex, str, bytes, bytearray):
        return _short(repr(v))
    if isinstance(v, types.ModuleType):
        return f"module {v.__name__}"
    if id(v) in path:
        return f"<cycle {_tname(t)}>"
    if depth > _MAX_DEPTH:
        return f"<{_tname(t)}>"
    path.add(id(v))
    try:
        sub = lambda x: _fp(x, depth + 1, path, budget)  # noqa: E731
        tn = _tname(t)
        if isinstance(v, (list, tuple)) and t.__repr__ in (list.__repr__, tuple.__repr__):
            body = ",".join(sub(x) for x in v[:_MAX_ITEMS])
            extra = f" dict={sub(vars(v))}" if hasattr(v, "__dict__") else ""
            return f"{tn}[{body}]len={len(v)}{extra}"
        if isinstance(v, (dict, types.MappingProxyType)):
            items = list(v.items())[:_MAX_ITEMS]
            body = ",".join(f"{sub(k)}:{sub(x)}" for k, x in items)
            extra = f" dict={sub(vars(v))}" if hasattr(v, "__dict__") else ""
            default = f" default={sub(v.default_factory)}" if hasattr(v, "default_factory") \
                else ""
            return f"{tn}{{{body}}}len={len(v)}{default}{extra}"
        if isinstance(v, (set, frozenset)):
            body = ",".join(sorted(sub(x) for x in v)[:_MAX_ITEMS])
            return f"{tn}{{{body}}}len={len(v)}"
        if isinstance(v, types.FunctionType):
            if v.__module__ != "__main__":
                return f"function {v.__module__}.{v.__qualname__}"
            cells = [sub(c.cell_contents) if _cell_full(c) else "<empty>"
                     for c in (v.__closure__ or ())]
            return (f"function {v.__qualname__} code={_code_fp(v.__code__, sub)} "
                    f"defaults={sub(v.__defaults__)} kw={sub(v.__kwdefaults__)} "
                    f"closure=[{','.join(cells)}] dict={sub(v.__dict__)} doc={v.__doc__!r:.60}")
        if isinstance(v, types.CodeType):
            return _code_fp(v, sub)
        if isinstance(v, types.MethodType):
            return f"method {sub(v.__func__)} of {sub(v.__self__)}"
        if isinstance(v, (types.BuiltinFunctionType, types.WrapperDescriptorType,
                          types.MethodDescriptorType, types.MethodWrapperType)):
            return _masked_repr(v)
        if isinstance(v, property):
            return f"property get={sub(v.fget)} set={sub(v.fset)} del={sub(v.fdel)}"
        if isinstance(v, (classmethod, staticmethod)):
            return f"{tn} of {sub(v.__func__)}"
        if isinstance(v, type):
            if v.__module__ != "__main__":
                return f"class {v.__module__}.{v.__qualname__}"
            d = {k: x for k, x in sorted(vars(v).items())  # pickle may rebuild in any order
                 if k not in ("__dict__", "__weakref__", "_abc_impl", "__slotnames__")}
            return (f"class {v.__qualname__} meta={_tname(type(v))} "
                    f"bases=[{','.join(_tname(b) for b in v.__bases__)}] dict={sub(d)}")
        if hasattr(v, "dtype") and hasattr(v, "shape") and hasattr(v, "tobytes"):
            try:
                digest = hashlib.sha1(v.tobytes()).hexdigest()[:16]
                return f"{tn} dtype={v.dtype} shape={v.shape} sha1={digest}"
            except Exception:
                pass
        parts = [tn]
        if t.__repr__ is not object.__repr__:
            parts.append(f"repr={_masked_repr(v)}")
        if hasattr(v, "closed") and hasattr(v, "tell"):
            parts.append(f"closed={v.closed!r} mode={getattr(v, 'mode', '?')!r}")
            if not v.closed:
                try:
                    parts.append(f"pos={v.tell()}")
                except Exception as e:
                    parts.append(f"pos=<{type(e).__name__}>")
        state = False
        if hasattr(v, "__dict__"):
            parts.append(f"dict={sub(vars(v))}")
            state = True
        for klass in t.__mro__:
            for slot in _slot_names(klass):
                if slot in ("__dict__", "__weakref__"):
                    continue
                state = True
                try:
                    parts.append(f"{slot}={sub(getattr(v, slot))}")
                except AttributeError:
                    parts.append(f"{slot}=<unset>")
        if not state and t.__repr__ is object.__repr__:
            try:
                red = v.__reduce_ex__(4)
            except Exception as e:
                parts.append(f"reduce=<{type(e).__name__}>")
            else:
                if isinstance(red, tuple):
                    parts.append(f"reduce={sub(red[1:])}")
                else:
                    parts.append(f"reduce={red!r}")
        return " ".join(parts)
    finally:
        path.discard(id(v))


def _slot_names(klass: type) -> list[str]:
    slots = klass.__dict__.get("__slots__", ())
    return [slots] if isinstance(slots, str) else list(slots)


def _cell_full(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def _code_fp(code: Any, sub: Any) -> str:
    import hashlib
    import types

    consts = ",".join(_code_fp(c, sub) if isinstance(c, types.CodeType) else sub(c)
                      for c in code.co_consts)
    return (f"code {code.co_name} sha1={hashlib.sha1(code.co_code).hexdigest()[:12]} "
            f"names={code.co_names} vars={code.co_varnames} consts=({consts})")


# ---------------------------------------------------------------------------------- probes

class _ProbeTimeout(BaseException):
    pass


def _probe_list(ns: dict[str, Any]) -> list[str]:
    """Zero-argument ``test*`` functions and TestCase tests of ``ns``: 'name' or 'Class.m'."""
    import inspect
    import types
    import unittest

    out = []
    for name in sorted(ns):
        obj = ns[name]
        if isinstance(obj, types.FunctionType) and name.startswith("test") \
                and getattr(obj, "__module__", None) == "__main__":
            try:
                params = inspect.signature(obj).parameters.values()
            except (TypeError, ValueError):
                continue
            if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                   for p in params):
                out.append(name)
        elif isinstance(obj, type) and issubclass(obj, unittest.TestCase) \
                and obj.__module__ == "__main__":
            for method in unittest.TestLoader().getTestCaseNames(obj):
                out.append(f"{name}.{method}")
    return out


def _run_probes(ns: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Call each probe; its outcome: 'pass', 'skip', 'fail: Type: message' or 'timeout'."""
    import asyncio
    import contextlib
    import inspect
    import io
    import unittest

    def on_alarm(signum: int, frame: Any) -> None:
        raise _ProbeTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outcomes: dict[str, str] = {}
    start = time.monotonic()
    try:
        for name in names:
            if time.monotonic() - start > PROBE_BUDGET:
                outcomes[name] = "not run (budget)"
                continue
            sink = io.StringIO()
            signal.setitimer(signal.ITIMER_REAL, PROBE_SECONDS)
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    if "." in name:
                        cls_name, method = name.split(".", 1)
                        cls = ns.get(cls_name)
                        if not isinstance(cls, type):
                            raise NameError(f"{cls_name} is not a class here")
                        result = unittest.TestResult()
                        cls(method).run(result)
                        if result.errors or result.failures:
                            raise AssertionError((result.errors + result.failures)[0][1]
                                                 .strip().splitlines()[-1])
                        if result.skipped:
                            outcomes[name] = "skip"
                            continue
                    else:
                        fn = ns.get(name)
                        if fn is None:
                            raise NameError(f"{name} is not defined here")
                        got = fn()
                        if inspect.iscoroutine(got):
                            asyncio.run(got)
                outcomes[name] = "pass"
            except _ProbeTimeout:
                outcomes[name] = "timeout"
            except BaseException as e:  # noqa: BLE001 - pytest.skip is a BaseException
                kind = type(e).__name__
                if kind in ("Skipped", "SkipTest"):
                    outcomes[name] = "skip"
                elif isinstance(e, KeyboardInterrupt):
                    raise
                else:
                    outcomes[name] = f"fail: {kind}: {_ADDR.sub('0x?', str(e))[:160]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return outcomes


# ---------------------------------------------------------------------------------- children

def _fingerprints(ns: dict[str, Any], names: Any) -> dict[str, list[str]]:
    """name -> ["ok", fp] or ["error", why]."""
    out = {}
    for name in names:
        if name not in ns:
            continue
        try:
            out[name] = ["ok", fingerprint(ns[name])]
        except BaseException as e:  # noqa: BLE001
            out[name] = ["error", f"{type(e).__name__}: {str(e)[:120]}"]
    return out


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def child_save(script: str, hib: str, out: str, probes: bool) -> None:
    import hibernate
    from hibernate._run import run_script

    data: dict[str, Any] = {"phase": "run"}
    _write(out, data)
    t0 = time.monotonic()
    status = run_script(script, [], hib, False)  # what `hibernate run --save HIB SCRIPT` does
    data.update(phase="saved", status=status, run_seconds=round(time.monotonic() - t0, 2))
    ns = sys.modules["__main__"].__dict__
    _write(out, data)
    try:
        manifest = hibernate.inspect(hib)
    except Exception as e:
        data.update(phase="done", inspect_error=f"{type(e).__name__}: {e}")
        _write(out, data)
        return
    data["entries"] = [{"name": e.name, "kind": str(e.kind), "how": str(e.how),
                        "type": e.type_name,
                        "skip": [str(e.skip.code), e.skip.message] if e.skip else None,
                        "replay": e.extra.get("replay")}
                       for e in manifest.entries]
    data["postmortem"] = (dict(manifest.session).get("postmortem") or {}).get("exception")
    names = [n for n in ns if not (n.startswith("__") and n.endswith("__"))]
    data["fingerprints"] = _fingerprints(ns, names)
    data["phase"] = "fingerprinted"
    _write(out, data)
    if probes:
        try:
            data["probes"] = _run_probes(ns, _probe_list(ns))
        except BaseException as e:  # noqa: BLE001
            data["probe_error"] = f"{type(e).__name__}: {e}"
    data["phase"] = "done"
    _write(out, data)


def child_load(hib: str, out: str, replay: bool, probe_names: list[str] | None,
               main_file: str | None = None) -> None:
    import builtins
    import types

    import hibernate

    data: dict[str, Any] = {"phase": "load"}
    _write(out, data)
    module = types.ModuleType("__main__")  # a fresh interpreter's __main__: no __file__
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    if main_file:  # --main-file: as if the user set __file__ (hibernate saves no dunders)
        module.__file__ = main_file
    sys.modules["__main__"] = module
    ns = module.__dict__
    t0 = time.monotonic()
    try:
        report = hibernate.load(hib, namespace=ns, replay=replay)
    except BaseException as e:  # noqa: BLE001
        data.update(phase="done", load_error=f"{type(e).__name__}: {str(e)[:300]}")
        _write(out, data)
        return
    data.update(phase="loaded", load_seconds=round(time.monotonic() - t0, 2),
                restored=list(report.restored), failed=dict(report.failed),
                skipped={n: [str(s.code), s.message] for n, s in report.skipped.items()},
                notes=dict(report.notes),
                replay_plan={n: list(c) for n, c in report.replay_plan.items()})
    _write(out, data)
    data["fingerprints"] = _fingerprints(ns, report.restored)
    data["phase"] = "fingerprinted"
    _write(out, data)
    if probe_names:
        try:
            data["probes"] = _run_probes(ns, probe_names)
        except BaseException as e:  # noqa: BLE001
            data["probe_error"] = f"{type(e).__name__}: {e}"
    data["phase"] = "done"
    _write(out, data)


def _child_main(argv: list[str]) -> None:
    role = argv[0]
    try:
        if role == "save":
            child_save(argv[1], argv[2], argv[3], argv[4] == "1")
        else:
            probe_names = json.loads(argv[3]) if len(argv) > 3 else None
            child_load(argv[1], argv[2], role == "replay", probe_names,
                       argv[4] if len(argv) > 4 and argv[4] else None)
    except BaseException:  # noqa: BLE001 - said in the log, then the parent reads the JSON
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads, atexit handlers and pools the tests left behind do not hold us


# ---------------------------------------------------------------------------------- parent

def find_modules(root: Path) -> list[tuple[str, Path, Path]]:
    """(library, sdist root, test module) for every test module under ``root``."""
    found = []
    for sdist in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(sdist.rglob("*.py")):
            if not (path.name.startswith("test_") or path.name.endswith("_test.py")):
                continue
            if not {"test", "tests"} & set(path.relative_to(sdist).parts[:-1]):
                continue
            found.append((sdist.name, sdist, path))
    return found


def import_root(path: Path) -> Path:
    """The directory from which ``path``'s package (if any) is importable."""
    d = path.parent
    while (d / "__init__.py").exists():
        d = d.parent
    return d


def run_child(args: list[str], env: dict[str, str], cwd: Path, log: Path,
              timeout: float) -> tuple[int | None, float]:
    """Run one child in its own process group; (returncode, seconds), None on timeout."""
    t0 = time.monotonic()
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(args)}\n".encode())
        f.flush()
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:  # whatever it started (pools, workers) goes with it
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    return code, time.monotonic() - t0


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _reason(text: str) -> str:
    """A failure or skip message with names, paths and numbers folded, for counting."""
    text = re.sub(r"(?<!\w)'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"/[\w./-]+", "PATH", text)
    text = re.sub(r"\b\d+\b", "N", text)
    return text[:110]


def measure(lib: str, sdist: Path, script: Path, work: Path, env0: dict[str, str],
            probes: bool, main_file: bool = False) -> dict[str, Any]:
    name = f"{lib}/{script.relative_to(sdist)}"
    slug = re.sub(r"[^\w.-]", "_", name)
    wd = work / slug
    wd.mkdir(parents=True)
    hib = wd / "session.hib"
    log = wd / "children.log"
    env = dict(env0)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(
        [str(import_root(script)), str(sdist), str(script.parent)]))
    me = str(Path(__file__).resolve())
    res: dict[str, Any] = {"module": name, "crashes": [], "dir": str(wd)}

    def child(role: str, *extra: str, timeout: float) -> dict[str, Any]:
        args = [sys.executable, me, "--child", role, *extra]
        code, secs = run_child(args, env, wd, log, timeout)
        res[f"{role}_seconds"] = round(secs, 1)
        if code is None:
            res.setdefault("timeouts", []).append(role)
        elif code < 0:
            res["crashes"].append({"role": role, "signal": signal.Signals(-code).name,
                                   "cwd": str(wd), "command": args,
                                   "PYTHONPATH": env["PYTHONPATH"]})
        return _read(wd / f"{role}.json")

    saved = child("save", str(script), str(hib), str(wd / "save.json"), "1" if probes else "0",
                  timeout=SAVE_TIMEOUT)
    res["save"] = saved
    if "entries" not in saved:
        res["verdict"] = f"no session file (save phase {saved.get('phase', 'never started')})"
        return res
    probe_names = [n for n, o in (saved.get("probes") or {}).items() if o != "not run (budget)"]
    pn = json.dumps(probe_names) if probes else "[]"
    mf = str(script) if main_file else ""
    res["load"] = child("load", str(hib), str(wd / "load.json"), pn, mf, timeout=LOAD_TIMEOUT)
    res["replay"] = child("replay", str(hib), str(wd / "replay.json"), pn, mf,
                          timeout=LOAD_TIMEOUT)
    return res


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    """Counts of one module's measurement."""
    s: dict[str, Any] = Counter()
    reasons: dict[str, Counter] = {"skip": Counter(), "fail": Counter(), "differs": Counter(),
                                   "probe": Counter(), "replay_fail": Counter()}
    saved = res.get("save", {})
    entries = [e for e in saved.get("entries", [])
               if not (e["skip"] and e["skip"][0] == "dunder")
               and not re.match(r"frame\d+\.", e["name"])]
    orig = saved.get("fingerprints", {})
    s["vars"] = len(entries)
    for e in entries:
        if e["kind"] == "skipped":
            s["skipped"] += 1
            s[f"skip:{e['skip'][0]}"] += 1
            reasons["skip"][f"{e['skip'][0]}: {_reason(e['skip'][1])}"] += 1
        else:
            s["stored"] += 1
            s[f"how:{e['how']}"] += 1
    names = {e["name"] for e in entries}
    skipped_names = {e["name"] for e in entries if e["kind"] == "skipped"}
    for role in ("load", "replay"):
        d = res.get(role) or {}
        if "restored" not in d:
            if d.get("load_error"):
                s[f"{role}_error"] += 1
                reasons["fail"][f"{role} raised: {_reason(d['load_error'])}"] += 1
            continue
        restored = [n for n in d["restored"] if n in names]
        s[f"{role}_restored"] += len(restored)
        failed = {n: r for n, r in d["failed"].items() if n in names}
        s[f"{role}_failed"] += len(failed)
        for r in failed.values():
            key = "fail" if role == "load" else "replay_fail"
            reasons[key][_reason(r)] += 1
        if role == "replay":
            s["replay_recovered"] += sum(1 for n in restored if n in skipped_names
                                         or n in (res.get("load") or {}).get("failed", {}))
        got = d.get("fingerprints", {})
        for n in restored:
            a, b = orig.get(n), got.get(n)
            if not a or not b or a[0] != "ok" or b[0] != "ok":
                s[f"{role}_nc"] += 1
            elif a[1] == b[1]:
                s[f"{role}_equal"] += 1
            else:
                s[f"{role}_differs"] += 1
                if role == "load":
                    reasons["differs"][f"{n}: {_diff(a[1], b[1])}"] += 1
        probes0 = saved.get("probes") or {}
        probes1 = d.get("probes") or {}
        for p, o0 in probes0.items():
            if p not in probes1:
                continue
            o1 = probes1[p]
            s[f"{role}_probes"] += 1
            if o0 == o1 or (o0.startswith("fail") and o1.startswith("fail")
                            and o0.split(":")[1] == o1.split(":")[1]):
                s[f"{role}_probes_same"] += 1
            elif o0 == "pass":
                s[f"{role}_probes_regressed"] += 1
                if role == "load":
                    reasons["probe"][f"{p}: {o1[:150]}"] += 1
            else:
                s[f"{role}_probes_other"] += 1
    s["crashes"] = len(res.get("crashes", []))
    s["timeouts"] = len(res.get("timeouts", []))
    return {"counts": dict(s), "reasons": {k: dict(v) for k, v in reasons.items()}}


def _diff(a: str, b: str) -> str:
    """Where two fingerprints first differ, in a few characters of each."""
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - 40)
    return f"…{a[lo:i + 40]!r} vs …{b[lo:i + 40]!r}"


COLUMNS = [("vars", "vars"), ("stored", "stored"), ("skipped", "skipped"),
           ("load_restored", "restored"), ("load_failed", "failed"),
           ("load_equal", "equal"), ("load_differs", "differs"), ("load_nc", "n/c"),
           ("replay_recovered", "replay+"), ("replay_failed", "replay failed"),
           ("load_probes", "probes"), ("load_probes_regressed", "probes regressed"),
           ("crashes", "crashes")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a directory of unpacked sdists")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    parser.add_argument("--only", default=None, help="only modules whose path contains this")
    parser.add_argument("--no-probes", action="store_true", help="do not call test functions")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--main-file", action="store_true",
                        help="set the loading __main__'s __file__ to the script (hibernate "
                             "does not save dunders; some libraries read it)")
    args = parser.parse_args()

    from hibernate._text import table

    modules = [m for m in find_modules(args.dir)
               if args.only is None or args.only in str(m[2])]
    scratch = Path(tempfile.mkdtemp(prefix="hib-libs-"))
    config = scratch / "config"
    config.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HIBERNATE_") and k != "PYTHONPATH"}
    env.update(HIBERNATE_CONFIG_DIR=str(config), HIBERNATE_KEY=secrets.token_hex(32),
               MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    print(f"{len(modules)} test modules under {args.dir}; scratch {scratch}", flush=True)
    results = []
    for lib, sdist, script in modules:
        t0 = time.monotonic()
        res = measure(lib, sdist, script, scratch / "work", env, not args.no_probes,
                      args.main_file)
        res["summary"] = summarize(res)
        results.append(res)
        c = res["summary"]["counts"]
        print(f"{time.monotonic() - t0:6.1f}s {res['module']}: " + ", ".join(
            f"{label} {c.get(key, 0)}" for key, label in COLUMNS)
            + (f"  [{res['verdict']}]" if res.get("verdict") else "")
            + ("  CRASH " + str(res["crashes"]) if res["crashes"] else "")
            + (f"  timeout {res['timeouts']}" if res.get("timeouts") else ""), flush=True)

    by_lib: dict[str, Counter] = {}
    reasons: dict[str, Counter] = {}
    for res in results:
        lib = res["module"].split("/")[0]
        by_lib.setdefault(lib, Counter()).update(res["summary"]["counts"])
        by_lib[lib]["modules"] += 1
        by_lib[lib]["no session"] += 1 if res.get("verdict") else 0
        for kind, counts in res["summary"]["reasons"].items():
            reasons.setdefault(kind, Counter()).update(counts)
    total: Counter = Counter()
    for c in by_lib.values():
        total.update(c)
    head = ["library", "modules", "no session", *[label for _, label in COLUMNS]]
    rows = [[lib, c["modules"], c["no session"], *[c.get(k, 0) for k, _ in COLUMNS]]
            for lib, c in [*sorted(by_lib.items()), ("TOTAL", total)]]
    print("\nper library (restored/equal/differs/n/c: default load; replay+: names that "
          "came back only with replay=True; probes: test functions called in both)")
    print(table(head, rows, right=range(1, len(head))))
    print("load with replay=True: restored {}, failed {}, equal {}, differs {}, "
          "probes regressed {} of {}".format(
              total["replay_restored"], total["replay_failed"], total["replay_equal"],
              total["replay_differs"], total["replay_probes_regressed"],
              total["replay_probes"]))
    codes = sorted((k[5:], v) for k, v in total.items() if k.startswith("skip:"))
    print("skip codes: " + ", ".join(f"{k} {v}" for k, v in codes))
    titles = {"skip": "commonest skip reasons (save)", "fail": "load failures",
              "replay_fail": "replay failures", "differs": "differing fingerprints",
              "probe": "probes that passed originally and fail restored"}
    for kind, title in titles.items():
        top = reasons.get(kind, Counter()).most_common(12)
        if top:
            print(f"\n{title}:")
            print(table(("count", "reason"), [(n, r) for r, n in top], right=(0,)))
    crashes = [(r["module"], c) for r in results for c in r["crashes"]]
    if crashes:
        print(f"\nCRASHES: {len(crashes)} children died by a signal")
        for module, c in crashes:
            print(f"  {module} [{c['role']}] {c['signal']}: cd {c['cwd']} && "
                  f"PYTHONPATH={c['PYTHONPATH']} {' '.join(c['command'])}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if not args.keep and not crashes:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"scratch kept: {scratch}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    sys.exit(main())
