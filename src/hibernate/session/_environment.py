"""The session's environment: what a session set up besides its variables.

Saved as the manifest's ``environment`` section (plain JSON, covered by the signature) when
``save(..., environment=...)`` asks for it, and put back by ``load(..., environment=...)``.
Parts:

- ``options``: pandas options that differ from their defaults, numpy print options and
  floating-point error state, matplotlib ``rcParams`` that differ from the defaults and the
  backend once chosen (from a file that is not the user's: pandas display options and
  numpy's only, since other options name modules to import or programs to run; the backend
  and pandas' other options import code, so not with ``data_only``);
- ``random``: the global random states of ``random`` and of ``numpy.random``'s legacy
  global generator;
- ``warnings``: the warning filters;
- ``cwd``: the working directory; ``sys_path``: the entries of ``sys.path`` (on load, the
  ones missing are appended: the loading interpreter's own entries stay first);
- ``ipython``: the IPython extensions loaded, the ``%autoreload`` mode, and the magics the
  session registered from its own functions (by the variable that holds each function,
  which is saved with the variables; the magic is registered again on load).

Environment variables are never saved unless named (``env_vars=["PROJECT_*"]``: they hold
secrets). ``options``, ``random``, ``warnings`` and environment variables are data: they
come back even with ``data_only`` (options only for libraries already imported then, since
importing one runs its code). ``cwd``, ``sys_path`` and ``ipython`` decide which code runs
next, so they come back from trusted files only. Whatever cannot be put back is reported,
never fatal.

Non-goals: the state of generators other than the global ones (``numpy.random.default_rng``
objects are variables, saved with them); options of other libraries.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import random
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["CODE_PARTS", "PARTS", "capture_environment", "parts_of", "restore_environment"]

PARTS = ("cwd", "sys_path", "options", "random", "warnings", "ipython")
# hibernate's own variables (the key, the config directory) are never saved nor set
_OWN_VARIABLES = ("HIBERNATE_",)
# parts that come from the user's own files only (signed, on the trust list, trust=True):
# environment variables reach every child process (PATH, LD_PRELOAD, PYTHONPATH), and
# warning filters can turn every warning into an error
OWN_PARTS = frozenset({"env_vars", "warnings"})
CODE_PARTS = frozenset({"cwd", "sys_path", "ipython"})  # they decide which code runs next


def parts_of(which: bool | str | Iterable[str] | None) -> tuple[str, ...]:
    """The parts named by ``environment=``: True (all), False/None (none), or names."""
    if which is None or which is False:
        return ()
    if which is True:
        return PARTS
    names = (which,) if isinstance(which, str) else tuple(which)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown environment parts {unknown}; choose from {list(PARTS)}")
    return tuple(n for n in PARTS if n in names)


def _plain(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _pandas_options() -> dict[str, Any] | None:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    try:
        registered = pd._config.config._registered_options
    except AttributeError:
        return None
    out = {}
    for key, spec in registered.items():
        with _quiet():
            value = pd.get_option(key)
        if value != spec.defval and _plain(value):
            out[key] = value
    return out


def _numpy_options() -> dict[str, Any] | None:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    printing = {k: v for k, v in np.get_printoptions().items() if _plain(v)}
    return {"print": printing, "errors": dict(np.geterr())}


def _matplotlib_options() -> dict[str, Any] | None:
    mpl = sys.modules.get("matplotlib")
    if mpl is None:
        return None
    changed = {}
    for key, value in mpl.rcParams.items():
        if key == "backend":
            continue
        default = mpl.rcParamsDefault.get(key)
        if value != default and _plain(value):
            changed[key] = value
    out: dict[str, Any] = {"rcParams": changed}
    # the backend once chosen (reading rcParams["backend"] would choose one: never here)
    chosen = getattr(mpl.rcParams, "_get_backend_or_none", lambda: None)()
    if isinstance(chosen, str):
        out["backend"] = chosen
    return out


def _random_states() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    out: dict[str, Any] = {"random": [version, list(internal), gauss]}
    np = sys.modules.get("numpy")
    if np is not None:
        legacy = type(np.random.mtrand._rand._bit_generator).__name__ == "MT19937"
        state = np.random.get_state(legacy=legacy)
        if isinstance(state, tuple):  # the legacy global generator (MT19937)
            name, keys, pos, has_gauss, cached = state
            out["numpy"] = [name, [int(k) for k in keys], int(pos), int(has_gauss),
                            float(cached)]
        elif _plain(state):  # another bit generator (set_bit_generator): its own state
            out["numpy"] = {"bit_generator": state}
    return out


def _warning_filters() -> list[list[Any]]:
    rows = []
    for action, message, category, module, lineno in warnings.filters:
        if not isinstance(category, type):
            continue
        rows.append([action, getattr(message, "pattern", message),
                     f"{category.__module__}.{category.__qualname__}",
                     getattr(module, "pattern", module), lineno])
    return rows


def _ipython_state() -> dict[str, Any] | None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return None
    loaded = sorted(getattr(shell.extension_manager, "loaded", ()))
    state: dict[str, Any] = {"extensions": [e for e in loaded if e != "hibernate"]}
    # magics the session registered from its own functions: by the variable holding the
    # function (saved with the variables, by value), so the section stays plain data
    ns = shell.user_ns
    magics: dict[str, dict[str, str]] = {}
    for kind, table in getattr(shell.magics_manager, "magics", {}).items():
        for name, func in table.items():
            if getattr(func, "__module__", None) != ns.get("__name__", "__main__"):
                continue
            holder = next((k for k, v in ns.items() if v is func and not k.startswith("_")),
                          None)
            magics.setdefault(kind, {})[name] = holder or ""
    if magics:
        state["magics"] = magics
    manager = getattr(shell, "magics_manager", None)
    autoreload = getattr(manager, "registry", {}).get("AutoreloadMagics")
    if autoreload is not None:
        mode = getattr(getattr(autoreload, "_reloader", None), "enabled", None)
        check_all = getattr(getattr(autoreload, "_reloader", None), "check_all", None)
        if mode is not None:
            state["autoreload"] = (2 if check_all else 1) if mode else 0
    return state


def capture_environment(parts: Iterable[str], env_vars: Iterable[str] = ()) -> dict[str, Any]:
    """The ``environment`` section for ``parts`` and the environment variables whose names
    match ``env_vars`` (glob patterns)."""
    parts = tuple(parts)
    env: dict[str, Any] = {}
    if "cwd" in parts:
        env["cwd"] = os.getcwd()
    if "sys_path" in parts:
        env["sys_path"] = [p for p in sys.path if isinstance(p, str)]
    if "options" in parts:
        options = {name: got for name, get in (("pandas", _pandas_options),
                                               ("numpy", _numpy_options),
                                               ("matplotlib", _matplotlib_options))
                   if (got := get()) is not None}
        env["options"] = options
    if "random" in parts:
        env["random"] = _random_states()
    if "warnings" in parts:
        env["warnings"] = _warning_filters()
    if "ipython" in parts:
        state = _ipython_state()
        if state is not None:
            env["ipython"] = state
    patterns = list(env_vars)
    if patterns:
        env["env_vars"] = {k: v for k, v in sorted(os.environ.items())
                           if not k.startswith(_OWN_VARIABLES)
                           if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    return env


def _quiet() -> contextlib.AbstractContextManager[None]:
    """Silence the FutureWarnings some deprecated pandas options raise when read or set."""
    return _silenced()


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _module(name: str, may_import: bool) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    if not may_import:
        raise LookupError(f"{name} is not imported (with data_only, options apply only to "
                          "libraries already imported)")
    import importlib

    return importlib.import_module(name)


# From a file that is not the user's, only options that change how things look: others
# name modules to import (pandas' plotting.backend), programs to run (matplotlib's
# animation.ffmpeg_path) or text for LaTeX.
_DISPLAY_ONLY = ("display.", "styler.format.", "styler.render.")


def _restore_options(options: Mapping[str, Any], may_import: bool, trusted: bool
                     ) -> list[str]:
    problems = []
    for lib, values in options.items():
        if lib not in ("pandas", "numpy", "matplotlib") or not isinstance(values, dict):
            problems.append(f"options for {lib!r}: not a library hibernate sets options of")
            continue
        if lib == "matplotlib" and not trusted:
            problems.append("matplotlib rcParams and backend: from trusted files only (some "
                            "name programs to run or modules to import)")
            continue
        if lib == "pandas":
            # set_option reads its key as a pattern: only exact, registered keys are set
            try:
                registered = sys.modules["pandas"]._config.config._registered_options
            except (KeyError, AttributeError):
                registered = {}
            unknown = sorted(str(k) for k in values if k not in registered)
            if unknown:
                problems.append(f"pandas options {unknown}: not options of this pandas")
            # (setting plotting.backend imports it: never with data_only)
            refused = sorted(str(k) for k in values if k in registered
                             and not (trusted and may_import)
                             and not str(k).startswith(_DISPLAY_ONLY))
            if refused:
                problems.append(f"pandas options {refused}: from trusted files only, not "
                                "with data_only (only display options come from files that "
                                "are not yours)")
            values = {k: v for k, v in values.items()
                      if k in registered and str(k) not in refused}
        try:
            mod = _module(lib, may_import)
        except Exception as e:
            problems.append(f"{lib} options: {e}")
            continue
        if lib == "pandas":
            for key, value in values.items():
                try:
                    with _quiet():
                        mod.set_option(key, value)
                except Exception as e:
                    problems.append(f"pandas option {key!r}: {type(e).__name__}: {e}")
        elif lib == "numpy":
            try:
                known = set(mod.get_printoptions()) - {"formatter"}  # (never from a file)
                printing = {k: v for k, v in dict(values.get("print", {})).items()
                            if k in known and (v is None or isinstance(v, (int, float, str, bool)))}
                errors = {k: v for k, v in dict(values.get("errors", {})).items()
                          if k in ("divide", "over", "under", "invalid")
                          and v in ("ignore", "warn", "raise", "print", "log")}
                mod.set_printoptions(**printing)
                mod.seterr(**errors)
            except Exception as e:
                problems.append(f"numpy options: {type(e).__name__}: {e}")
        else:
            for key, value in dict(values.get("rcParams", {})).items():
                try:
                    mod.rcParams[key] = value
                except Exception as e:
                    problems.append(f"matplotlib rcParams[{key!r}]: {type(e).__name__}: {e}")
            problems += _restore_backend(mod, values.get("backend"), may_import)
    return problems


def _restore_backend(mpl: Any, backend: object, may_import: bool) -> list[str]:
    """Switch matplotlib to the saved backend (it imports the backend's module, so not with
    ``data_only``); the same backend, already in use, is left alone."""
    if not isinstance(backend, str):
        return []
    current = getattr(mpl.rcParams, "_get_backend_or_none", lambda: None)()
    if isinstance(current, str) and current.lower() == backend.lower():
        return []
    if not may_import:
        return [f"matplotlib backend {backend!r}: not switched with data_only (it imports "
                "the backend's code)"]
    try:
        mpl.use(backend, force=True)
    except Exception as e:
        return [f"matplotlib backend {backend!r}: {type(e).__name__}: {e}"]
    return []


def _restore_random(states: Mapping[str, Any], may_import: bool) -> list[str]:
    problems = []
    try:
        version, internal, gauss = states["random"]
        random.setstate((version, tuple(int(i) for i in internal), gauss))
    except Exception as e:
        problems.append(f"random state: {type(e).__name__}: {e}")
    if "numpy" in states:
        try:
            np = _module("numpy", may_import)
            saved = states["numpy"]
            if isinstance(saved, dict):
                np.random.set_state(dict(saved["bit_generator"]))
            else:
                name, keys, pos, has_gauss, cached = saved
                np.random.set_state((str(name), np.asarray(keys, dtype=np.uint32), int(pos),
                                     int(has_gauss), float(cached)))
        except Exception as e:
            problems.append(f"numpy.random state: {type(e).__name__}: {e}")
    return problems


_ACTIONS = frozenset({"default", "error", "ignore", "always", "module", "once"})


def _restore_warnings(rows: Iterable[Any]) -> list[str]:
    import builtins
    import re

    problems, filters = [], []
    for row in rows:
        try:
            action, message, category, module, lineno = row
            mod_name, _, qualname = str(category).rpartition(".")
            owner = builtins if mod_name == "builtins" else sys.modules.get(mod_name)
            cls = getattr(owner, qualname, None) if owner is not None else None
            if (action not in _ACTIONS or not isinstance(cls, type)
                    or not issubclass(cls, Warning)):
                raise ValueError(f"filter {action!r} for {category!r}")
            filters.append((action, None if message is None else re.compile(message, re.I),
                            cls, None if module is None else re.compile(module),
                            int(lineno)))
        except Exception as e:
            problems.append(f"warning filter not restored: {type(e).__name__}: {e}")
    warnings.filters[:] = filters  # type: ignore[index]
    warnings._filters_mutated()  # type: ignore[attr-defined]
    return problems


def _restore_ipython(state: Mapping[str, Any]) -> list[str]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return ["ipython: not running in IPython"]
    problems = []
    for ext in state.get("extensions", []):
        try:
            shell.extension_manager.load_extension(str(ext))
        except Exception as e:
            problems.append(f"extension {ext!r}: {type(e).__name__}: {e}")
    for kind, table in dict(state.get("magics", {})).items():
        for name, holder in dict(table).items():
            func = shell.user_ns.get(holder) if holder else None
            if kind not in ("line", "cell") or not callable(func):
                problems.append(f"%{'%' if kind == 'cell' else ''}{name}: its function is not "
                                "a variable of the session: define it again (a replay that "
                                "runs the cell defining it does)")
                continue
            try:
                shell.register_magic_function(func, magic_kind=kind, magic_name=str(name))
            except Exception as e:
                problems.append(f"magic {name!r}: {type(e).__name__}: {e}")
    mode = state.get("autoreload")
    if mode in (0, 1, 2):
        try:
            if "IPython.extensions.autoreload" not in shell.extension_manager.loaded:
                shell.extension_manager.load_extension("autoreload")
            shell.run_line_magic("autoreload", str(mode))
        except Exception as e:
            problems.append(f"%autoreload {mode}: {type(e).__name__}: {e}")
    return problems


def restore_environment(section: Mapping[str, Any], parts: Iterable[str], trusted: bool,
                        data_only: bool, env_vars: bool = True) -> dict[str, str]:
    """Put back ``parts`` of a saved environment (and the environment variables it names,
    unless ``env_vars`` is false): part -> "restored" or why not. Never raises for what one
    part cannot do."""
    outcome: dict[str, str] = {}
    named = env_vars and "env_vars" in section
    for part in [*parts, *(["env_vars"] if named else [])]:
        if part not in section:
            outcome[part] = "not saved"
            continue
        if part in CODE_PARTS and (data_only or not trusted):
            outcome[part] = ("not restored: it decides which code runs next, so it comes "
                             "back from trusted files only (not with data_only)")
            continue
        if part in OWN_PARTS and not trusted:
            outcome[part] = "not restored: from trusted files only (your own files)"
            continue
        value = section[part]
        problems: list[str] = []
        try:
            if part == "cwd":
                os.chdir(str(value))
            elif part == "sys_path":  # add what is missing; this interpreter's own stay
                sys.path.extend(p for p in dict.fromkeys(str(p) for p in value)
                                if p not in sys.path)
            elif part == "options":
                problems = _restore_options(value, may_import=not data_only,
                                            trusted=trusted)
            elif part == "random":
                problems = _restore_random(value, may_import=not data_only)
            elif part == "warnings":
                problems = _restore_warnings(value)
            elif part == "ipython":
                problems = _restore_ipython(value)
            else:  # env_vars
                os.environ.update({str(k): str(v) for k, v in dict(value).items()
                                   if not str(k).startswith(_OWN_VARIABLES)})
        except Exception as e:
            problems = [f"{type(e).__name__}: {e}"]
        outcome[part] = "restored" if not problems else "; ".join(problems)
    return outcome
