"""Cells and slices: the code that made a session, and the part of it that makes one
variable again.

A *cell* is one unit of code that ran in the session: an IPython cell (its transformed
source, where magics are calls), or a top-level statement of a script run by ``hibernate
run``. ``analyze`` reads each cell's code (never runs it) for the names it binds, reads and
may change, and for side effects outside the session; ``slice_for`` computes, for a name,
the cells whose replay, in order, recreates it in the state it had.

The analysis is static and errs on the side of more cells, never fewer:
- a cell *may change* a name when it calls a method on it (``gen.send``, ``h.update``,
  ``df.fillna``), assigns into it (``x[0] = 1``, ``x.a = 1``, ``x += [1]``), passes it to a
  call (``next(gen)``, ``clean(df)``), iterates it (``for line in fh``) or deletes from it;
  calls on what an import bound (``pd.read_csv``) change nothing replay needs (modules
  come back by reference; their options are the environment's);
- names read inside the session's own functions and classes count as read by every cell
  that names them (transitively), and ``global`` assignments in them as bound there;
- a cell that uses ``exec``, ``eval``, ``globals()``, ``vars()``, ``setattr``, ``%run`` or a
  magic not known to leave variables alone is *opaque*: it may bind or change anything, so
  it joins every slice it could matter to;
- a star import may bind anything: it joins the slices that reach back past it;
- a cell that changes the working directory (``os.chdir``, ``%cd``) joins every slice with
  a later cell (replay starts where the recorded session started, so relative paths
  resolve as they did).

Non-goals: changes through aliases the code does not name (``b = a; b.append(1)`` changes
``a``: the slice of ``a`` has the cell only if it names ``a``), data read from files that
changed since, randomness not seeded in the slice.
"""

from __future__ import annotations

import ast
import builtins
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Cell", "CellInfo", "Slicer", "analyze", "effect_of", "effects_in_order",
           "side_effects", "slice_for"]

_OPAQUE_CALLS = frozenset({"exec", "eval", "globals", "vars", "setattr", "delattr",
                           "__import__", "locals"})
# Line and cell magics known to leave the session's variables alone, and those whose
# argument is code to analyze as such (time, timeit, capture).
_QUIET_MAGICS = frozenset({"matplotlib", "load_ext", "reload_ext", "unload_ext",
                           "autoreload", "aimport", "config", "precision", "pprint", "xmode",
                           "hibernate", "who", "whos", "who_ls", "pwd", "history", "pinfo",
                           "pinfo2", "psearch", "lsmagic", "magic", "page", "colors",
                           "pdb", "debug", "tb", "pip", "conda", "notebook",
                           "prun", "env", "alias_magic", "automagic", "autocall"})
_CODE_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
_BUILTINS = frozenset(dir(builtins))
# Builtins that never change their arguments, iterators included (``sum``, ``list``,
# ``sorted`` consume a generator, so they are not here).
_PURE_CALLS = frozenset({"print", "len", "repr", "str", "isinstance", "issubclass", "type",
                         "id", "hash", "format", "abs", "round", "int", "float", "bool",
                         "callable", "hasattr", "display", "ascii", "bin", "hex", "oct",
                         "chr", "ord", "divmod", "pow", "complex"})

# Calls that act outside the session: (dotted name or method name, what it does). A method
# name matches any receiver (``df.to_csv``); a dotted name matches that call.
_EFFECTS: dict[str, str] = {
    # (creating a directory is not flagged: it destroys nothing, and notebooks do it to set
    # up where they work)
    **{f"os.{n}": "changes files" for n in (
        "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "chmod",
        "chown", "link", "symlink", "truncate", "utime")},
    **{f"os.{n}": "starts a process" for n in (
        "system", "popen", "spawnl", "spawnv", "execv", "execl", "fork", "kill")},
    **{f"shutil.{n}": "changes files" for n in (
        "rmtree", "move", "copy", "copy2", "copyfile", "copytree", "make_archive")},
    **{f"subprocess.{n}": "starts a process" for n in (
        "run", "call", "check_call", "check_output", "Popen")},
    **{f"socket.{n}": "uses the network" for n in ("socket", "create_connection")},
    **{f"urllib.request.{n}": "uses the network" for n in ("urlopen", "urlretrieve")},
    **{f"requests.{n}": "uses the network" for n in (
        "get", "post", "put", "patch", "delete", "head", "request", "Session")},
    **{f"httpx.{n}": "uses the network" for n in (
        "get", "post", "put", "patch", "delete", "head", "request", "Client", "AsyncClient")},
    **{f"np.{n}": "writes files" for n in ("save", "savez", "savez_compressed", "savetxt")},
    **{f"numpy.{n}": "writes files" for n in ("save", "savez", "savez_compressed",
                                              "savetxt")},
    **{f"{m}.{n}": "writes files" for m in ("pickle", "json", "joblib", "dill", "marshal",
                                            "cloudpickle") for n in ("dump",)},
    **{f"hibernate.{n}": "writes files" for n in ("save", "checkpoint", "prune", "retain")},
    "shutil.unpack_archive": "changes files",
    "webbrowser.open": "uses the network",
}
_EFFECT_METHODS: dict[str, str] = {
    **{n: "writes files" for n in (
        "to_csv", "to_parquet", "to_excel", "to_json", "to_pickle", "to_feather", "to_hdf",
        "to_sql", "to_stata", "to_html", "to_latex", "to_markdown", "to_orc", "to_xml",
        "to_clipboard", "tofile", "savefig", "write_text", "write_bytes", "write_csv",
        "write_parquet", "write_ipc", "write_json", "write_ndjson", "write_excel",
        "write_database", "write_delta", "sink_parquet", "sink_csv", "sink_ipc")},
    **{n: "changes files" for n in ("unlink", "rmdir", "touch", "rename", "symlink_to",
                                    "hardlink_to", "chmod")},
}
_WRITE_MODES = frozenset("wax+")
# Modules whose every call acts outside the session (but these few)
_OUTSIDE = {"shutil": "changes files", "subprocess": "starts a process",
            "socket": "uses the network", "urllib": "uses the network",
            "requests": "uses the network", "httpx": "uses the network",
            "http": "uses the network", "ftplib": "uses the network",
            "smtplib": "uses the network", "telnetlib": "uses the network",
            "webbrowser": "uses the network", "multiprocessing": "starts a process",
            "pty": "starts a process"}
_HARMLESS = frozenset({"shutil.which", "shutil.disk_usage", "shutil.get_terminal_size",
                       "urllib.parse", "http.HTTPStatus", "socket.gethostname"})
_OS_PREFIXES = {"os.exec": "starts a process", "os.spawn": "starts a process",
                "os.posix_spawn": "starts a process", "os.fork": "starts a process",
                "os.kill": "starts a process", "os.write": "writes files",
                "asyncio.create_subprocess": "starts a process"}
# Openers that write when given a writing mode (second argument or ``mode=``)
_OPENERS = frozenset({"open", "io.open", "os.open", "codecs.open", "gzip.open", "bz2.open",
                      "lzma.open", "tarfile.open", "zipfile.ZipFile", "shelve.open",
                      "dbm.open"})


def effect_of(name: str, mode: str | None) -> str | None:
    """What a call of ``name`` (dotted, resolved through imports) does outside the session,
    or None. ``mode``: its mode argument's text ("" when absent, None when not a string)."""
    if name in _EFFECTS:
        return f"{_EFFECTS[name]} ({name})"
    if name in _OPENERS or name.endswith(".open") and name.split(".")[0] in (
            "io", "gzip", "bz2", "lzma", "tarfile", "codecs"):
        if mode is None or _WRITE_MODES & set(mode):
            return f"writes a file ({name}(..., {mode if mode is not None else '?'!r}))"
        return None
    if name.startswith(tuple(_OS_PREFIXES)):
        prefix = next(p for p in _OS_PREFIXES if name.startswith(p))
        return f"{_OS_PREFIXES[prefix]} ({name})"
    root = name.split(".")[0]
    if root in _OUTSIDE and not name.startswith(tuple(_HARMLESS)):
        return f"{_OUTSIDE[root]} ({name})"
    if name.endswith((".save", ".dump")) and root in ("torch", "joblib", "dill", "np",
                                                       "numpy", "pickle", "json", "yaml"):
        return f"writes files ({name})"
    return None


@dataclass(frozen=True)
class Cell:
    """One unit of code that ran: its number, its source, and whether it raised."""

    number: int
    code: str
    failed: bool = False


@dataclass(frozen=True)
class CellInfo:
    """What a cell binds, reads and may change, and what it does outside the session."""

    binds: frozenset[str]
    reads: frozenset[str]
    changes: frozenset[str]
    opaque: bool = False
    imports: frozenset[str] = frozenset()  # names bound by import statements
    chdir: bool = False  # changes the working directory (os.chdir, %cd)
    # what its imports bind (``sp`` -> ``subprocess``, ``rmtree`` -> ``shutil.rmtree``) and
    # the dotted calls it makes, with their mode argument: effects are found through them
    aliases: tuple[tuple[str, str], ...] = ()
    calls: tuple[tuple[str, str | None], ...] = ()
    star: bool = False
    effects: tuple[str, ...] = ()
    functions: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _base(node: ast.AST) -> str | None:
    """The name at the root of ``a.b[c].d(...)``, or None."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            break
    return node.id if isinstance(node, ast.Name) else None


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Scope(ast.NodeVisitor):
    """Names of one scope: what it binds, reads (free names), declares global, and how it
    touches names (for the module scope: the cell)."""

    def __init__(self, params: Iterable[str] = ()) -> None:
        self.binds: set[str] = set(params)
        self.imports: set[str] = set()
        self.reads: set[str] = set()
        self.changes: set[str] = set()
        self.globals: set[str] = set()
        self.opaque = False
        self.chdir = False
        self.star = False
        self.effects: list[str] = []
        self.aliases: dict[str, str] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.functions: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    # -- bindings -----------------------------------------------------------------------
    def _bind_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.binds.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._bind_target(t)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value)
        else:  # x[0] = ..., x.a = ...: changes x, and reads what the target reads
            base = _base(target)
            if base is not None:
                self.changes.add(base)
            self.visit(target)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self._bind_target(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._bind_target(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        base = _base(node.target)
        if base is not None:
            self.reads.add(base)
            self.changes.add(base)  # x += [1] changes a list in place
            if isinstance(node.target, ast.Name):
                self.binds.add(base)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind_target(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if isinstance(t, ast.Name):
                self.binds.add(t.id)
            else:
                base = _base(t)
                if base is not None:
                    self.changes.add(base)
                self.visit(t)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        base = _base(node.iter)
        if base is not None:
            self.changes.add(base)  # iterating consumes an iterator
        self._bind_target(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            name = alias.asname or alias.name.split(".")[0]
            self.binds.add(name)
            self.imports.add(name)
            self.aliases[name] = alias.name if alias.asname else name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self.binds.add(alias.asname or alias.name)
                self.imports.add(alias.asname or alias.name)
                if node.module and not node.level:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.binds.add(node.name)
        for stmt in node.body:
            self.visit(stmt)

    # -- reads --------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.binds.add(node.id)
        else:
            self.binds.add(node.id)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name in _OPAQUE_CALLS:
            self.opaque = True
        if name == "os.chdir":
            self.chdir = True
        if self._magic(node):
            return
        self._effects(node, name)
        if isinstance(node.func, ast.Attribute):
            base = _base(node.func)
            if base is not None:
                self.changes.add(base)  # a method may change its receiver
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            base = _base(arg)
            if base is not None and name not in _PURE_CALLS:
                self.changes.add(base)  # a callee may change what it is given
        self.generic_visit(node)

    def _magic(self, node: ast.Call) -> bool:
        """IPython's transformed magics: get_ipython().run_line_magic(name, line) and
        run_cell_magic(name, line, body). True when handled."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and _dotted(func.value.func) == "get_ipython"):
            return False
        kind = func.attr
        if kind in ("system", "getoutput"):
            self.effects.append("runs a shell command (!cmd)")
            return True
        if kind not in ("run_line_magic", "run_cell_magic"):
            self.opaque = True
            return True
        args = [_string(a) for a in node.args]
        magic = args[0] if args else None
        code = (args[2] if len(args) > 2 else None) if kind == "run_cell_magic" else (
            args[1] if len(args) > 1 else None)
        if magic == "cd":
            self.chdir = True
        elif magic in _CODE_MAGICS and code is not None:
            try:
                inner = ast.parse(code)
            except SyntaxError:
                self.opaque = True
                return True
            for stmt in inner.body:
                self.visit(stmt)
        elif magic in ("writefile", "sx", "system", "bash", "sh", "script", "html",
                       "javascript", "js", "svg", "latex", "markdown"):
            if magic == "writefile":
                self.effects.append("writes a file (%%writefile)")
            elif magic in ("sx", "system", "bash", "sh", "script"):
                self.effects.append(f"runs a shell command (%{magic})")
        elif magic not in _QUIET_MAGICS:
            self.opaque = True  # %run, %store -r, a user's own magic: anything
        if magic == "hibernate":
            self.effects.append("saves or loads sessions (%hibernate)")
        return True

    def _effects(self, node: ast.Call, name: str | None) -> None:
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        mode_node = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "mode"), None)
        mode = _string(mode_node) if mode_node is not None else ""
        if name is not None:
            self.calls.append((name, mode))  # found again with earlier cells' imports
            head, _, rest = name.partition(".")
            resolved = self.aliases.get(head, head) + (f".{rest}" if rest else "")
            found = effect_of(resolved, mode)
            if found is not None:
                self.effects.append(found)
                return
        if method is not None and method in _EFFECT_METHODS:
            self.effects.append(f"{_EFFECT_METHODS[method]} (.{method})")
        elif method == "open" and (mode is None or _WRITE_MODES & set(mode)):
            self.effects.append(f"writes a file (.open(..., "
                                f"{mode if mode is not None else '?'!r}))")

    # -- nested scopes ------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        a = node.args
        for default in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
            self.visit(default)
        params = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
        params += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
        inner = _Scope(params)
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            inner.visit(stmt)
        free = (inner.reads - (inner.binds - inner.globals)) | inner.globals
        writes = inner.binds & inner.globals
        self.opaque |= inner.opaque
        self.chdir |= inner.chdir
        self.effects += inner.effects
        self.calls += inner.calls
        for reads, w in inner.functions.values():  # nested functions' globals
            free |= reads - inner.binds
            writes |= w
        if isinstance(node, ast.Lambda):
            self.reads |= free
            self.changes |= inner.changes - inner.binds
        else:
            self.binds.add(node.name)
            self.functions[node.name] = (frozenset(free | (inner.changes - inner.binds)),
                                         frozenset(writes))

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        inner = _Scope()
        for stmt in node.body:
            inner.visit(stmt)
        reads = set(inner.reads) - inner.binds
        writes: set[str] = set()
        for _, (r, w) in inner.functions.items():
            reads |= r
            writes |= w
        self.opaque |= inner.opaque
        self.effects += inner.effects
        self.calls += inner.calls
        self.binds.add(node.name)
        self.functions[node.name] = (frozenset(reads), frozenset(writes))

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp
                       | ast.DictComp) -> None:
        inner = _Scope()
        for gen in node.generators:
            inner.visit(gen.iter)
            base = _base(gen.iter)
            if base is not None:
                inner.changes.add(base)
            inner._bind_target(gen.target)
            for cond in gen.ifs:
                inner.visit(cond)
        if isinstance(node, ast.DictComp):
            inner.visit(node.key)
            inner.visit(node.value)
        else:
            inner.visit(node.elt)
        self.reads |= inner.reads - inner.binds
        self.changes |= inner.changes - inner.binds
        self.opaque |= inner.opaque
        self.effects += inner.effects
        self.calls += inner.calls
        self.functions.update(inner.functions)

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_GeneratorExp = _comprehension
    visit_DictComp = _comprehension


@functools.lru_cache(maxsize=4096)
def analyze(code: str) -> CellInfo:
    """What ``code`` binds, reads and may change (names of the session), read statically.
    A cell that does not parse is opaque."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return CellInfo(frozenset(), frozenset(), frozenset(), opaque=True)
    scope = _Scope()
    for stmt in tree.body:
        scope.visit(stmt)
    return CellInfo(frozenset(scope.binds), frozenset(scope.reads - _BUILTINS),
                    frozenset(scope.changes - _BUILTINS), scope.opaque,
                    frozenset(scope.imports), scope.chdir,
                    tuple(scope.aliases.items()), tuple(scope.calls), scope.star,
                    tuple(dict.fromkeys(scope.effects)), dict(scope.functions))


def side_effects(code: str) -> tuple[str, ...]:
    """What ``code`` does outside the session (files, processes, network), as far as its
    direct calls say."""
    return effects_in_order([analyze(code)])[0]


def effects_in_order(infos: Sequence[CellInfo]) -> list[tuple[str, ...]]:
    """Each cell's effects, its calls resolved through the imports of the cells before it
    (``from shutil import rmtree`` in one cell, ``rmtree(p)`` in a later one)."""
    aliases: dict[str, str] = {}
    out = []
    for info in infos:
        for name in info.binds - info.imports:
            aliases.pop(name, None)  # rebound to something else
        aliases.update(info.aliases)
        found = list(info.effects)
        for name, mode in info.calls:
            head, _, rest = name.partition(".")
            if head in aliases:
                effect = effect_of(aliases[head] + (f".{rest}" if rest else ""), mode)
                if effect is not None:
                    found.append(effect)
        out.append(tuple(dict.fromkeys(found)))
    return out


def slice_for(names: Iterable[str], cells: Sequence[Cell],
              infos: Sequence[CellInfo] | None = None) -> list[int]:
    """The numbers of the cells (in order) whose replay recreates ``names`` as they are
    after the last of ``cells``."""
    return Slicer(cells, infos).slice(names)


class Slicer:
    """Slices over one list of cells (analyzed once; each ``slice`` walks back from the
    end)."""

    def __init__(self, cells: Sequence[Cell], infos: Sequence[CellInfo] | None = None) -> None:
        self.cells = list(cells)
        self.infos = list(infos) if infos is not None else [analyze(c.code) for c in cells]
        # what each cell really reads, binds and changes once the session's own functions
        # it names are expanded (with their definitions as of that cell)
        self.reads: list[set[str]] = []
        self.binds: list[set[str]] = []
        self.changes: list[set[str]] = []
        known: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        imported: set[str] = set()  # names bound to what an import gave (modules...)
        for info in self.infos:
            r, b, c = set(info.reads), set(info.binds), set(info.changes)
            c -= imported  # pd.read_csv(...) does not change pd: it comes back by reference
            todo, seen = list(r | c), set()
            while todo:
                n = todo.pop()
                if n in seen or n not in known:
                    continue
                seen.add(n)
                f_reads, f_writes = known[n]
                r |= f_reads
                b |= f_writes
                c |= f_reads  # a function may change what it reaches (globals it names)
                todo.extend(f_reads)
            for fn, spec in info.functions.items():
                known[fn] = spec
                r |= spec[0] - b  # a def reads (at call time) what its body reads
            imported -= b - info.imports
            imported |= info.imports
            self.reads.append(r)
            self.binds.append(b)
            self.changes.append(c)
        self.stars = [i for i, info in enumerate(self.infos) if info.star]

    def slice(self, names: Iterable[str]) -> list[int]:
        infos, changes, reads = self.infos, self.changes, self.reads
        wanted: set[int] = set()
        todo = [(n, len(self.cells)) for n in names]
        seen: set[tuple[str, int]] = set()
        while todo:
            self._walk(todo, seen, wanted)
            # later cells may read files relative to where earlier ones moved
            last = max(wanted, default=-1)
            for i, info in enumerate(infos):
                if info.chdir and i < last and i not in wanted:
                    wanted.add(i)
                    todo += [(used, i) for used in reads[i] | changes[i]]
        return [self.cells[i].number for i in sorted(wanted)]

    def _walk(self, todo: list[tuple[str, int]], seen: set[tuple[str, int]],
              wanted: set[int]) -> None:
        infos, binds, changes, reads = self.infos, self.binds, self.changes, self.reads
        while todo:
            name, end = todo.pop()
            if (name, end) in seen:
                continue
            seen.add((name, end))
            start = None
            for i in range(end - 1, -1, -1):
                if name in binds[i] or infos[i].opaque:
                    start = i
                    if name in binds[i]:
                        break
            if start is None and not any(i < end for i in self.stars):
                continue  # a builtin, or made outside the recorded cells
            lo = start if start is not None else 0
            chosen = [i for i in range(lo, end)
                      if i == start or name in changes[i] or infos[i].opaque
                      or infos[i].star]
            for i in chosen:
                if i in wanted:
                    continue
                wanted.add(i)
                for used in reads[i] | changes[i]:
                    todo.append((used, i))
