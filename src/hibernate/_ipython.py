"""IPython / Jupyter front end: ``%load_ext hibernate`` and the ``%hibernate`` line magic.

Thin over the library: every subcommand calls the same function a script would, on the
shell's user namespace (which is the kernel's ``__main__``). Reports are shown with
``display`` (HTML tables in Jupyter, text in a terminal) and not returned, so they do not
land in ``Out``.

Non-goals: cell magics, autosave (see checkpoints).
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from ._reports import clean

__all__ = ["MAGIC_HELP", "load_ipython_extension", "unload_ipython_extension"]

DEFAULT_PATH = "session.hib"

DEFAULT_STORE = ".hibernate"

MAGIC_HELP = """\
%hibernate save       [PATH] [--include NAMES] [--exclude NAMES] [--compression fast|small]
                             [--environment [PARTS]] [--env-vars PATTERNS] [-o KEY=VALUE ...]
%hibernate load       [PATH] [--include NAMES] [--exclude NAMES] [--trust] [--data-only]
                             [--environment [PARTS]] [--replay [all]] [-o KEY=VALUE ...]
%hibernate inspect    [PATH] [-o KEY=VALUE ...]
%hibernate browse     [PATH_OR_STORE] [-o KEY=VALUE ...]
%hibernate checkpoint [STORE] [-m MESSAGE] [--compression fast|small]
                             [--environment [PARTS]] [--env-vars PATTERNS]
%hibernate log        [STORE] [--all]
%hibernate checkout   ID [--store STORE] [--only-changed] [--trust] [--data-only]
                             [--environment [PARTS]] [--replay [all]]
%hibernate autosave   on|off [--every N] [--min-interval SECONDS] [--store STORE]
                             [--compression fast|small] [--keep N] [--max-size BYTES]
                             [--environment PARTS|none] [--env-vars PATTERNS]
%hibernate resume     [--store STORE] [--trust] [--data-only] [--environment PARTS|none]
                             [--replay [all]]

PATH defaults to session.hib in the working directory (like R's .RData); STORE to the
notebook's own store (.NOTEBOOK.ipynb.hibernate/ beside it, when the kernel knows its
notebook from JPY_SESSION_NAME), else .hibernate/ in the directory the kernel started in
(found once: a later chdir does not move it). browse shows a file (or a store's HEAD
checkpoint) inline: its entries, metadata and previews, with no code from it run. Autosave
keeps the newest 100 checkpoints (--keep N, 0 for all) within --max-size (e.g. 2G), and
records the whole environment unless --environment says which parts (or none). resume
restores the newest checkpoint of the store's current line and the environment it recorded
(the working directory, sys.path and extensions only from your own signed checkpoints or
with --trust). Set c.Hibernate.resume = True
(and c.Hibernate.autosave = True) in the IPython profile, with hibernate among its
extensions, to resume (and autosave) at every kernel start. NAMES is a comma-separated
list of names or glob patterns. -o passes a storage option (repeatable). PARTS: a
comma-separated list of cwd, sys_path, options, random, warnings, ipython (all when
omitted); PATTERNS: environment variables to save (none unless named). IPython's own names
(In, Out, _, _iN, get_ipython...) are never saved and never overwritten. --replay
recomputes, from the recorded cells, what could not be saved or restored (cells that write
files, start processes or use the network run only with --replay all).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would call sys.exit
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%hibernate", add_help=False)
    p.add_argument("command", choices=["save", "load", "inspect", "checkpoint", "log", "resume",
                                       "checkout", "autosave", "browse", "help"])
    p.add_argument("path", nargs="?", default=None)
    p.add_argument("-m", dest="message", default=None)
    p.add_argument("--store", default=None)
    p.add_argument("--keep", type=int, default=100)
    p.add_argument("--max-size", default=None)
    p.add_argument("--all", action="store_true")
    p.add_argument("--only-changed", action="store_true")
    p.add_argument("--every", type=int, default=1)
    p.add_argument("--min-interval", type=float, default=0.0)
    p.add_argument("--include", default=None)
    p.add_argument("--exclude", default=None)
    p.add_argument("--trust", action="store_true")
    p.add_argument("--data-only", action="store_true")
    p.add_argument("--compression", default=None)
    p.add_argument("-o", dest="options", action="append", default=[])
    p.add_argument("--environment", nargs="?", const="all", default=None)
    p.add_argument("--env-vars", default=None)
    p.add_argument("--replay", nargs="?", const="yes", default=None, choices=["yes", "all"])
    p.add_argument("--engines", default="auto", choices=["auto", "write", "graph", "skip"])
    return p


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [n.strip() for n in value.split(",") if n.strip()]


def _replay(value: str | None) -> bool | str:
    return "all" if value == "all" else value is not None


def _parts(value: str | None, absent: bool = False) -> bool | list[str]:
    """``--environment`` (all parts), ``--environment cwd,random``, ``--environment none``,
    or absent (``absent``: none for save, load, checkpoint and checkout; all for autosave
    and resume)."""
    if value is None:
        return absent
    if value == "none":
        return False
    return True if value == "all" else (_names(value) or [])


def _options(pairs: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-o takes KEY=VALUE, not {pair!r}")
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out or None


def display(obj: object) -> None:
    """IPython's ``display`` (the table library keeps the session's random state itself:
    see ``_text``)."""
    from IPython.display import display as _display

    _display(obj)  # type: ignore[no-untyped-call]


def run_magic(shell: Any, line: str) -> None:
    """Run one ``%hibernate`` line in ``shell`` (an InteractiveShell)."""
    from . import _api

    words = shlex.split(line)
    if not words or words[0] in ("help", "-h", "--help"):
        print(MAGIC_HELP)
        return
    try:
        a = _parser().parse_args(words)
    except ValueError as e:
        print(f"%hibernate: {e}\n\n{MAGIC_HELP}")
        return
    opts = _options(a.options)
    path = a.path or DEFAULT_PATH
    if a.command == "save":
        display(_api.save(path, shell.user_ns, include=_names(a.include),
                          exclude=_names(a.exclude), compression=a.compression,
                          storage_options=opts, environment=_parts(a.environment),
                          env_vars=_names(a.env_vars) or (), engines=a.engines))
    elif a.command == "load":
        display(_api.load(path, shell.user_ns, include=_names(a.include),
                          exclude=_names(a.exclude), trust=a.trust, data_only=a.data_only,
                          storage_options=opts, environment=_parts(a.environment),
                          replay=_replay(a.replay)))
    elif a.command == "inspect":
        display(_api.inspect(path, storage_options=opts))
    elif a.command == "browse":  # entries and previews as HTML, read with data_only
        from .viewer import browse

        display(browse(path, storage_options=opts))
    elif a.command == "resume":
        resume(shell, a.store, trust=a.trust, data_only=a.data_only, display=display,
               replay=_replay(a.replay), environment=_parts(a.environment, absent=True))
    elif a.command in ("checkpoint", "log", "checkout", "autosave"):
        _history(shell, a, opts, display)
    else:
        print(MAGIC_HELP)


_stores: dict[int, str] = {}  # id(shell) -> its notebook's store, found once


def notebook_store(shell: Any = None) -> str:
    """The autosave store of this kernel's notebook, an absolute path found once per shell
    (at ``%load_ext``): ``.NAME.ipynb.hibernate`` beside the notebook when the kernel knows
    it (``JPY_SESSION_NAME``), else ``.hibernate`` in the directory the kernel started in.
    Found once, so a cell's ``os.chdir`` moves neither autosave nor resume."""
    key = id(shell)
    if key not in _stores:
        _stores[key] = _find_store(_start_directory(shell))
    return _stores[key]


def _start_directory(shell: Any) -> str:
    """Where the kernel started (IPython's ``_dh[0]``; the kernel runs in the notebook's
    folder), else the working directory now."""
    dirs = getattr(getattr(shell, "history_manager", None), "dir_hist", None)
    first = dirs[0] if isinstance(dirs, list) and dirs else None
    return os.path.abspath(first if isinstance(first, (str, os.PathLike)) else os.getcwd())


def _find_store(start: str) -> str:
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    if not notebook.endswith(".ipynb"):
        return os.path.join(start, DEFAULT_STORE)
    folder, name = os.path.split(notebook)
    if not os.path.isabs(notebook) or not os.path.isdir(folder):
        folder = start  # relative to the server's root: the kernel started in its folder
    return os.path.join(folder, f".{name}.hibernate")


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _bytes(text: str | None) -> int | None:
    """``2G``, ``500M``, ``1048576``: a size in bytes."""
    if text is None:
        return None
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise ValueError(f"--max-size {text!r}: a size such as 2G, 500M or 1048576") from None


def resume(shell: Any, store: str | None = None, *, trust: bool = False,
           data_only: bool = False, display: Any = display, replay: bool | str = False,
           environment: bool | str | list[str] = True) -> None:
    """Restore the newest checkpoint on the current line of ``store`` (default: the
    notebook's), with the ``environment`` it recorded (all parts by default, by ``load``'s
    rules) and ``replay`` as ``checkout`` has them, and say what was restored and from
    when; say so when there is nothing."""
    from . import checkpoints as cp

    store = store or notebook_store(shell)
    try:
        line = cp.log(store) if _exists(store) else []
    except Exception as e:
        print(f"hibernate resume: cannot read {store}: {type(e).__name__}: {e}")
        return
    if not line:
        print(f"hibernate resume: nothing to resume (no checkpoints in {store})")
        return
    newest = line[0]
    report = cp.checkout(store, newest.id, shell.user_ns, trust=trust, data_only=data_only,
                         replay=replay, environment=environment)
    print(f"hibernate resume: restored {len(report.restored)} names from checkpoint "
          f"{newest.id} of {store} ({clean(newest.message, 80)}, {newest.time})")
    display(report)


def _exists(store: str) -> bool:
    return "://" in store or os.path.isdir(store)


def _history(shell: Any, a: argparse.Namespace, opts: dict[str, Any] | None,
             display: Any) -> None:
    from . import checkpoints as cp

    a.store = a.store or notebook_store(shell)

    if a.command == "checkpoint":
        c = cp.checkpoint(a.path or a.store, shell.user_ns, message=a.message,
                          compression=a.compression, storage_options=opts,
                          environment=_parts(a.environment),
                          env_vars=_names(a.env_vars) or ())
        print(f"checkpoint {c.id} ({c.bytes_written} new bytes)")
    elif a.command == "log":
        for c in cp.log(a.path or a.store, all=a.all, storage_options=opts):
            print(c)
    elif a.command == "checkout":
        display(cp.checkout(a.store, a.path, shell.user_ns, only_changed=a.only_changed,
                            trust=a.trust, data_only=a.data_only, storage_options=opts,
                            replay=_replay(a.replay), environment=_parts(a.environment)))
    elif a.path == "on":
        from .checkpoints._autosave import enable

        enable(shell, a.store, every=a.every, min_interval=a.min_interval,
               storage_options=opts, compression=a.compression,
               keep=a.keep or None, max_bytes=_bytes(a.max_size),
               environment=_parts(a.environment, absent=True),
               env_vars=_names(a.env_vars) or ())
        print(f"autosave on: a checkpoint in {a.store} after "
              f"{'each cell' if a.every == 1 else f'every {a.every} cells'}")
    elif a.path == "off":
        from .checkpoints._autosave import disable

        disable(shell)
        print("autosave off")
    else:
        print("%hibernate autosave takes on or off")


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext hibernate``: register the ``%hibernate`` line magic."""

    def hibernate(line: str) -> None:
        run_magic(shell, line)

    hibernate.__doc__ = MAGIC_HELP
    shell.register_magic_function(hibernate, magic_kind="line", magic_name="hibernate")
    notebook_store(shell)  # found now, from where the kernel started, and kept
    from .session._replay import track_failures

    track_failures(shell)  # which cells raise: replay knows them from now on
    config = getattr(shell, "config", None)
    options = config.get("Hibernate", {}) if config is not None else {}
    if _true(options.get("resume")):
        resume(shell)
    if _true(options.get("autosave")):
        run_magic(shell, "autosave on")


def _true(value: object) -> bool:
    """A profile option: True, or a true-looking string from a command line."""
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes"))


def unload_ipython_extension(shell: Any) -> None:
    from .checkpoints._autosave import disable

    disable(shell)
    shell.magics_manager.magics["line"].pop("hibernate", None)
