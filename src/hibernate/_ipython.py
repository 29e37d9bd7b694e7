"""IPython / Jupyter front end: ``%load_ext hibernate`` and the ``%hibernate`` line magic.

Thin over the library: every subcommand calls the same function a script would, on the
shell's user namespace (which is the kernel's ``__main__``). Reports are shown with
``display`` (HTML tables in Jupyter, text in a terminal) and not returned, so they do not
land in ``Out``.

Non-goals: cell magics, autosave (see checkpoints).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

__all__ = ["MAGIC_HELP", "load_ipython_extension", "unload_ipython_extension"]

DEFAULT_PATH = "session.hib"

MAGIC_HELP = """\
%hibernate save    [PATH] [--include NAMES] [--exclude NAMES] [-o KEY=VALUE ...]
%hibernate load    [PATH] [--include NAMES] [--exclude NAMES] [--trust] [--data-only]
                          [-o KEY=VALUE ...]
%hibernate inspect [PATH] [-o KEY=VALUE ...]

PATH defaults to session.hib in the working directory (like R's .RData). NAMES is a
comma-separated list of names or glob patterns. -o passes a storage option (repeatable).
IPython's own names (In, Out, _, _iN, get_ipython...) are never saved and never overwritten.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would call sys.exit
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%hibernate", add_help=False)
    p.add_argument("command", choices=["save", "load", "inspect", "help"])
    p.add_argument("path", nargs="?", default=DEFAULT_PATH)
    p.add_argument("--include", default=None)
    p.add_argument("--exclude", default=None)
    p.add_argument("--trust", action="store_true")
    p.add_argument("--data-only", action="store_true")
    p.add_argument("-o", dest="options", action="append", default=[])
    return p


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [n.strip() for n in value.split(",") if n.strip()]


def _options(pairs: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-o takes KEY=VALUE, not {pair!r}")
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out or None


def run_magic(shell: Any, line: str) -> None:
    """Run one ``%hibernate`` line in ``shell`` (an InteractiveShell)."""
    from IPython.display import display as _display

    from . import _api

    def display(obj: object) -> None:
        _display(obj)  # type: ignore[no-untyped-call]

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
    if a.command == "save":
        display(_api.save(a.path, shell.user_ns, include=_names(a.include),
                          exclude=_names(a.exclude), storage_options=opts))
    elif a.command == "load":
        display(_api.load(a.path, shell.user_ns, include=_names(a.include),
                          exclude=_names(a.exclude), trust=a.trust, data_only=a.data_only,
                          storage_options=opts))
    elif a.command == "inspect":
        display(_api.inspect(a.path, storage_options=opts))
    else:
        print(MAGIC_HELP)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext hibernate``: register the ``%hibernate`` line magic."""

    def hibernate(line: str) -> None:
        run_magic(shell, line)

    hibernate.__doc__ = MAGIC_HELP
    shell.register_magic_function(hibernate, magic_kind="line", magic_name="hibernate")


def unload_ipython_extension(shell: Any) -> None:
    shell.magics_manager.magics["line"].pop("hibernate", None)
