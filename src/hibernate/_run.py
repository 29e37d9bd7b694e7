"""Scripts: run one as ``__main__`` and save its session at exit, or on a crash with a
post-mortem of every traceback frame's locals; open a saved session in a shell.

A post-mortem is stored as ordinary entries named ``frame<N>.<local>`` (N counts from the
outermost frame; such names are never bound by a plain ``load``) plus a ``postmortem``
section in the manifest's session metadata: the exception, the formatted traceback and, per
frame, its function, file, line and local names. ``hibernate inspect`` shows it.

Non-goals: saving on signals (SIGKILL cannot be caught; SIGTERM ends Python without
``atexit`` unless the program handles it).
"""

from __future__ import annotations
import __future__

import atexit
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Any

from .format import How, Kind
from .session import Selector

# The compiler flags of every ``from __future__`` feature.
_FUTURE_FLAGS = sum(getattr(__future__, name).compiler_flag
                    for name in __future__.all_feature_names)

__all__ = ["PostMortem", "open_shell", "postmortem_from", "postmortem_of", "run_script",
           "save_on_exit"]


def _frames(tb: types.TracebackType | None) -> list[types.FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def postmortem_of(exc: BaseException, ns: dict[str, Any]
                  ) -> tuple[dict[str, object], dict[str, Any]]:
    """(extra entries, manifest metadata) recording the locals of each traceback frame.
    Frames that run at module level in ``ns`` are left out: their locals are ``ns``."""
    extra: dict[str, object] = {}
    frames_meta = []
    for i, frame in enumerate(_frames(exc.__traceback__)):
        code = frame.f_code
        names: list[str] = []
        if frame.f_locals is not ns and frame.f_globals is not frame.f_locals:
            for local, value in frame.f_locals.items():
                extra[f"frame{i}.{local}"] = value
                names.append(local)
        frames_meta.append({"index": i, "function": code.co_name, "file": code.co_filename,
                            "line": frame.f_lineno, "locals": names})
    meta = {"postmortem": {
        "exception": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "frames": frames_meta,
    }}
    return extra, meta


@dataclass(frozen=True)
class Frame:
    index: int
    function: str
    file: str
    line: int
    locals: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PostMortem:
    """What ``hibernate shell`` binds as ``postmortem``: the exception and its frames."""

    exception: str
    traceback: str
    frames: tuple[Frame, ...]

    def __repr__(self) -> str:
        rows = [f"  frame{f.index}: {f.function} ({os.path.basename(f.file)}:{f.line}) "
                f"locals: {', '.join(f.locals) or '-'}" for f in self.frames]
        return f"<post-mortem of {self.exception}>\n" + "\n".join(rows)


def _save(path: str, ns: dict[str, Any], exc: BaseException | None) -> str:
    from ._api import save_namespace

    extra, meta = postmortem_of(exc, ns) if exc is not None else ({}, {})
    report = save_namespace(path, ns, Selector(None, None), extra=extra, session=meta)
    what = f"post-mortem of {type(exc).__name__}" if exc is not None else "session"
    return f"hibernate: saved {what} to {report.path} ({len(report.entries)} names, " \
           f"{sum(s.code != 'dunder' for s in report.skipped.values())} skipped)"


def save_on_exit(path: str, *, on_error_only: bool = False,
                 namespace: dict[str, Any] | None = None) -> None:
    """Save ``namespace`` (default ``__main__``) when the program ends; on an uncaught
    exception, with a post-mortem of the traceback's frames."""
    ns = namespace if namespace is not None else sys.modules["__main__"].__dict__
    state: dict[str, Any] = {"done": False}
    previous = sys.excepthook

    def on_exception(t: type[BaseException], e: BaseException,
                     tb: types.TracebackType | None) -> None:
        state["done"] = True
        try:
            print(_save(path, ns, e.with_traceback(tb)), file=sys.stderr)
        except Exception as err:  # never hide the program's own error
            print(f"hibernate: could not save {path}: {err}", file=sys.stderr)
        previous(t, e, tb)

    def at_exit() -> None:
        if state["done"] or on_error_only:
            return
        try:
            print(_save(path, ns, None), file=sys.stderr)
        except Exception as err:
            print(f"hibernate: could not save {path}: {err}", file=sys.stderr)

    sys.excepthook = on_exception
    atexit.register(at_exit)


def run_script(script: str, args: list[str], save: str | None, on_error_only: bool) -> int:
    """Run ``script`` as ``__main__`` with ``args``; save its session; return the exit code."""
    path = save or os.path.splitext(os.path.basename(script))[0] + ".hib"
    with open(script, "rb") as f:
        source = f.read()
    whole = compile(source, script, "exec")  # a syntax error is raised here, as by python
    module = types.ModuleType("__main__")
    module.__file__ = os.path.abspath(script)
    ns = module.__dict__
    ns["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    status, error = 0, None
    try:
        _run_as_cells(source, script, ns, whole.co_flags)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException as e:  # the script's crash: record it, report it like Python does
        status, error = 1, e
        tb = e.__traceback__  # drop hibernate's own frames
        while tb is not None and tb.tb_frame.f_code in (run_script.__code__,
                                                        _run_as_cells.__code__):
            tb = tb.tb_next
        e.with_traceback(tb)
        traceback.print_exception(e)
    if not on_error_only or status != 0:
        try:
            print(_save(path, ns, error), file=sys.stderr)
        except Exception as err:
            print(f"hibernate: could not save {path}: {err}", file=sys.stderr)
    return status


def _run_as_cells(source: bytes, script: str, ns: dict[str, Any], flags: int) -> None:
    """Run the script's top-level statements one by one in ``ns``, recording each as a cell
    (for replay) before it runs; a statement that raises is recorded as failed. ``flags``:
    the whole script's code flags (its ``from __future__`` imports hold for every one)."""
    import ast

    from .session._cells import Cell
    from .session._replay import record_script_cells

    text = _decoded(source)
    tree = ast.parse(text, script)
    cells: list[Cell] = []
    record_script_cells(ns, cells)
    for number, stmt in enumerate(tree.body, 1):
        code = compile(ast.Module(body=[stmt], type_ignores=[]), script, "exec",
                       flags=flags & _FUTURE_FLAGS, dont_inherit=True)
        segment = _statement_source(text, stmt)
        cells.append(Cell(number, segment))
        try:
            exec(code, ns)
        except BaseException:
            cells[-1] = Cell(number, segment, failed=True)
            raise


def _statement_source(text: str, stmt: Any) -> str:
    """A top-level statement's lines, decorators included (an ``ast`` def or class starts
    at ``def``/``class``: replaying it without its decorators would make another value)."""
    import ast

    decorators = getattr(stmt, "decorator_list", None) or []
    if decorators:  # from the line of the first (each is on a line of its own, by syntax)
        import types

        stmt = types.SimpleNamespace(lineno=min(d.lineno for d in decorators), col_offset=0,
                                     end_lineno=stmt.end_lineno,
                                     end_col_offset=stmt.end_col_offset)
    # (ast's own line numbering: a form feed inside a line does not start a new one)
    return ast.get_source_segment(text, stmt, padded=True) or ""


def _decoded(source: bytes) -> str:
    """The script's text in its declared source encoding (PEP 263: a coding cookie or a BOM,
    UTF-8 otherwise), as Python reads it; the cells recorded for replay are that text."""
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    return source.decode(encoding).removeprefix("\ufeff")


def postmortem_from(manifest_session: dict[str, Any], values: dict[str, object]
                    ) -> PostMortem | None:
    """Rebuild the PostMortem from a manifest's metadata and the loaded frame entries."""
    pm = manifest_session.get("postmortem")
    if not isinstance(pm, dict):
        return None
    frames = []
    for f in pm.get("frames", []):
        i = int(f.get("index", 0))
        local = {n: values[f"frame{i}.{n}"] for n in f.get("locals", [])
                 if f"frame{i}.{n}" in values}
        frames.append(Frame(i, str(f.get("function")), str(f.get("file")),
                            int(f.get("line", 0)), local))
    return PostMortem(str(pm.get("exception")), str(pm.get("traceback")), tuple(frames))


def open_shell(path: str, trust: bool = False, use_ipython: bool = True) -> int:
    """Load a saved session (and its post-mortem, if any) and start a shell on it.

    The one trust decision applies: from a file you do not trust, the shell loads data only
    (as ``load(data_only=True)``), and a frame's locals are bound as names only when they
    are plain names (not a builtin's, not a dunder) holding data: a file cannot make your
    ``print`` its ``exec``. All frames stay in ``postmortem.frames[i].locals``."""
    import builtins

    from ._api import inspect, load
    from ._text import sanitize
    from .session import is_plain_name
    from .trust import is_trusted_manifest

    manifest = inspect(path)
    trusted = is_trusted_manifest(manifest, trust)
    frame_names = [e.name for e in manifest.entries
                   if e.name.startswith("frame") and "." in e.name and e.kind != Kind.SKIPPED]
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    report = load(path, ns, include=["*", *frame_names], trust=trust, data_only=not trusted)
    frames = {n: ns.pop(n) for n in frame_names if n in ns}
    lines = [f"hibernate shell: {len(report.restored) - len(frames)} names from {path}"
             + ("" if trusted else " (not trusted: data only)")]
    if report.failed:
        lines.append(f"  failed to restore: {', '.join(report.failed)}")
    pm = postmortem_from(dict(manifest.session), frames)
    if pm is not None:
        ns["postmortem"] = pm
        if pm.frames and pm.frames[-1].locals:
            refs = {e.name for e in manifest.entries if e.how == How.REFERENCE}
            last = pm.frames[-1]
            bind = {n: v for n, v in last.locals.items() if trusted or (
                is_plain_name(n) and f"frame{last.index}.{n}" not in refs)}
            held = sorted(set(last.locals) - set(bind))
            ns.update(bind)
            if held:
                lines.append(f"  not bound from an untrusted file (see postmortem.frames): "
                             f"{', '.join(held)}")
        lines += [repr(pm), "The failing frame's locals are bound; all frames are in "
                  "`postmortem.frames[i].locals`."]
    # the shell hands the terminal to the user, so the CLI's sanitizer is not in place: the
    # banner (exception text, frame and file names from the file) goes through it here
    banner = sanitize("\n".join(lines))
    if use_ipython:
        try:
            from IPython import start_ipython
        except ImportError:
            pass
        else:
            print(banner)
            start_ipython(argv=["--no-banner", "--quiet"], user_ns=ns)
            return 0
    import code

    code.interact(banner=banner, local=ns, exitmsg="")
    return 0
