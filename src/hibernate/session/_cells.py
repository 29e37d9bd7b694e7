"""Cells and slices: the code that made a session, and the part of it that makes one
variable again.

A *cell* is one unit of code that ran in the session: an IPython cell (its transformed
source, where magics are calls), or a top-level statement of a script run by ``hibernate
run``. ``analyze`` reads each cell's code (never runs it) for the names it binds, reads and
may change, and for side effects outside the session (``_effects``); ``_slicing`` then
computes, for a name, the cells whose replay, in order, recreates it in the state it had.

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
from typing import Any

from ._effects import EFFECT_METHODS, WRITE_MODES, effect_of

__all__ = ["RANDOM", "Cell", "CellInfo", "analyze", "effect_of", "effects_in_order",
           "side_effects"]

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
_CODE_MAGICS = frozenset({"time", "timeit", "capture", "prun"})  # (timeit binds nothing)
_BUILTINS = frozenset(dir(builtins))
RANDOM = "<random>"  # the global random generators, as a name that cells read and change
# Builtins that never change their arguments, iterators included (``sum``, ``list``,
# ``sorted`` consume a generator, so they are not here).
_PURE_CALLS = frozenset({"print", "len", "repr", "str", "isinstance", "issubclass", "type",
                         "id", "hash", "format", "abs", "round", "int", "float", "bool",
                         "callable", "hasattr", "display", "ascii", "bin", "hex", "oct",
                         "chr", "ord", "divmod", "pow", "complex"})



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
    maybe: frozenset[str] = frozenset()  # bound only where it may not be (if, try, loops)
    called: frozenset[str] = frozenset()  # plain names it calls
    receivers: frozenset[str] = frozenset()  # names whose methods it calls
    dynamic: bool = False  # calls something the code does not name


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
        self.depth = 0            # inside if/for/while/try/with/match: bindings may not happen
        self.maybe: set[str] = set()   # names bound only where they may not be
        self.sure: set[str] = set()    # names bound where they surely are
        self.walrus: set[str] = set()  # := targets (they bind in the enclosing scope)
        self.called: set[str] = set()  # plain names called (f(...))
        self.receivers: set[str] = set()  # names whose methods are called (x.m(...))
        self.dynamic = False      # calls through subscripts or results (fs["k"](), f()())
        self.last_lambda: tuple[frozenset[str], frozenset[str]] | None = None

    def _bound(self, name: str) -> None:
        self.binds.add(name)
        (self.maybe if self.depth else self.sure).add(name)

    def _nested(self, stmts: Iterable[ast.AST]) -> None:
        """Statements that may not run (a branch, a loop body, a try)."""
        self.depth += 1
        for stmt in stmts:
            self.visit(stmt)
        self.depth -= 1

    # -- bindings -----------------------------------------------------------------------
    def _bind_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self._bound(target.id)
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
        self.last_lambda = None
        self.visit(node.value)
        for t in node.targets:
            self._bind_target(t)
        spec = self.last_lambda
        if spec is not None and isinstance(node.value, (ast.Lambda, ast.GeneratorExp)):
            # f = lambda: k and gen = (x * k ...) read k when called or consumed
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.functions[t.id] = spec

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)  # evaluated at once (without the __future__ import)
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
                self._bound(base)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind_target(node.target)
        if isinstance(node.target, ast.Name):
            self.walrus.add(node.target.id)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if isinstance(t, ast.Name):
                self._bound(t.id)
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
        self.depth += 1  # an empty iterable binds nothing
        self._bind_target(node.target)
        self.depth -= 1
        self._nested([*node.body, *node.orelse])

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self._nested([*node.body, *node.orelse])

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self._nested([*node.body, *node.orelse])

    def visit_Try(self, node: ast.Try) -> None:
        self._nested([*node.body, *node.handlers, *node.orelse, *node.finalbody])

    def visit_TryStar(self, node: Any) -> None:  # (3.11+)
        self._nested([*node.body, *node.handlers, *node.orelse, *node.finalbody])

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        self.depth += 1
        for case in node.cases:
            self.visit(case.pattern)
            if case.guard is not None:
                self.visit(case.guard)
            for stmt in case.body:
                self.visit(stmt)
        self.depth -= 1

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._bound(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bound(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        for child in [*node.keys, *node.patterns]:
            self.visit(child)
        if node.rest:
            self._bound(node.rest)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars)
        self._nested(node.body)  # a context manager may suppress what follows

    visit_AsyncWith = visit_With

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            name = alias.asname or alias.name.split(".")[0]
            self._bound(name)
            self.imports.add(name)
            self.aliases[name] = alias.name if alias.asname else name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self._bound(alias.asname or alias.name)
                self.imports.add(alias.asname or alias.name)
                if node.module and not node.level:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bound(node.name)
        for stmt in node.body:
            self.visit(stmt)

    # -- reads --------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
            if node.id == "__main__":
                self.opaque = True
        else:
            self._bound(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # writes into the namespace the analysis cannot follow: ip.user_ns[...] = ...,
        # sys.modules["__main__"].x = ...
        if node.attr in ("user_ns", "user_global_ns") or _dotted(node) == "sys.modules":
            self.opaque = True
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name == "os.chdir":
            self.chdir = True
        if self._magic(node):
            return
        if name in _OPAQUE_CALLS or (name or "").endswith((".exec", ".eval")) or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("push", "run_cell", "ex", "ev", "run_line_magic",
                                       "run_cell_magic", "magic")):
            self.opaque = True  # code or names the analysis cannot see: ip.push({...})
        self._effects(node, name)
        if isinstance(node.func, ast.Name):
            self.called.add(node.func.id)
        elif isinstance(node.func, ast.Attribute):
            base = _base(node.func)
            if base is not None:
                self.changes.add(base)  # a method may change its receiver
                self.receivers.add(base)
            else:
                self.dynamic = True
        else:  # fs["k"](), make()(): what runs is not known from the code
            self.dynamic = True
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
            if magic == "timeit":  # runs in a namespace of its own: it reads, binds nothing
                scratch = _Scope()
                for stmt in inner.body:
                    scratch.visit(stmt)
                self.reads |= scratch.reads - scratch.binds
                self.changes |= scratch.changes - scratch.binds
                self.effects += scratch.effects
                self.calls += scratch.calls
                self.opaque |= scratch.opaque
            else:
                for stmt in inner.body:
                    self.visit(stmt)
            if magic == "capture" and args[1]:
                target = str(args[1]).split()[-1] if str(args[1]).split() else ""
                if target.isidentifier():
                    self._bound(target)
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
        if method is not None and method in EFFECT_METHODS:
            self.effects.append(f"{EFFECT_METHODS[method]} (.{method})")
        elif method == "open" and (mode is None or WRITE_MODES & set(mode)):
            self.effects.append(f"writes a file (.open(..., "
                                f"{mode if mode is not None else '?'!r}))")

    # -- nested scopes ------------------------------------------------------------------
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        a = node.args
        for default in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
            self.visit(default)
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)  # evaluated when the def runs
        if not isinstance(node, ast.Lambda) and node.returns is not None:
            self.visit(node.returns)
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
            self.last_lambda = (frozenset(free | (inner.changes - inner.binds)),
                                frozenset(writes))
        else:
            self._bound(node.name)
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
        self.reads |= set(inner.reads) - inner.binds  # the body runs when the class is made
        self.changes |= inner.changes - inner.binds
        self.opaque |= inner.opaque
        self.effects += inner.effects
        self.calls += inner.calls
        self._bound(node.name)
        self.functions[node.name] = (frozenset(reads), frozenset(writes))

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp
                       | ast.DictComp) -> None:
        inner = _Scope()
        for k, gen in enumerate(node.generators):
            where = self if k == 0 else inner  # the first iterable is read outside
            where.visit(gen.iter)
            base = _base(gen.iter)
            if base is not None:
                where.changes.add(base)
            inner._bind_target(gen.target)
            for cond in gen.ifs:
                inner.visit(cond)
        if isinstance(node, ast.DictComp):
            inner.visit(node.key)
            inner.visit(node.value)
        else:
            inner.visit(node.elt)
        local = inner.binds - inner.walrus
        self.reads |= inner.reads - local
        self.changes |= inner.changes - local
        for name in inner.walrus:  # := in a comprehension binds in the enclosing scope
            self._bound(name)
            self.walrus.add(name)
        self.opaque |= inner.opaque
        self.effects += inner.effects
        self.calls += inner.calls
        self.functions.update(inner.functions)
        self.called |= inner.called - local
        self.receivers |= inner.receivers - local
        self.dynamic |= inner.dynamic
        if isinstance(node, ast.GeneratorExp):
            self.last_lambda = (frozenset(inner.reads - local), frozenset())

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
                    tuple(dict.fromkeys(scope.effects)), dict(scope.functions),
                    frozenset(scope.maybe - scope.sure), frozenset(scope.called),
                    frozenset(scope.receivers), scope.dynamic)


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
            if head in aliases and effect_of(name, mode) is None:
                effect = effect_of(aliases[head] + (f".{rest}" if rest else ""), mode)
                if effect is not None:
                    found.append(effect)
        out.append(tuple(dict.fromkeys(found)))
    return out
