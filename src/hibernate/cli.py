"""The ``hibernate`` command line: a thin front end over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from . import _api
from .errors import HibernateError

__all__ = ["main"]


def _options(pairs: list[str]) -> dict[str, object] | None:
    from ._ipython import _options as parse

    return parse(pairs)


def _inspect(args: argparse.Namespace) -> int:
    manifest = _api.inspect(args.file, storage_options=_options(args.options))
    if args.json:
        d = manifest.to_dict()
        d["signature"] = manifest.signature
        print(json.dumps(d, indent=2))
    else:
        print(manifest)
    return 0


def _is_store(path: str, options: dict[str, object] | None) -> bool:
    from .viewer import is_store

    return is_store(path, options)


def _verify_store(args: argparse.Namespace) -> int:
    from .checkpoints._history import verify

    every, damaged = verify(args.file, storage_options=_options(args.options))
    for key, lines in damaged.items():
        print(f"{key}: {lines[0]}" + "".join(f"\n  in {line}" for line in lines[1:]))
    state = "OK" if not damaged else f"{len(damaged)} damaged or missing object(s)"
    print(f"{args.file}: {state}; {len(every)} checkpoints checked")
    return 0 if not damaged else 1


def _verify(args: argparse.Namespace) -> int:
    if _is_store(args.file, _options(args.options)):
        return _verify_store(args)
    manifest, damaged = _api.verify_file(args.file, storage_options=_options(args.options))
    for i, err in damaged.items():
        names = [n for g in manifest.groups if i in g.blobs for n in g.names]
        print(f"blob {i} ({', '.join(names)}): {err}")
    total = sum(b.length for b in manifest.blobs)
    state = "OK" if not damaged else f"{len(damaged)} damaged blob(s)"
    print(f"{args.file}: {state}; {len(manifest.blobs)} blobs, {total} bytes checked; "
          f"signature {manifest.signature}")
    return 0 if not damaged else 1


def file_globals(path: str, options: dict[str, object] | None = None
                 ) -> tuple[object, dict[tuple[str, str], list[str]]]:
    """(kept for callers of the CLI module) see ``_api.file_globals``."""
    return _api.file_globals(path, storage_options=options)


def _trust(args: argparse.Namespace) -> int:
    from ._reports import clean
    from .trust import add_trusted

    manifest, found = file_globals(args.file, _options(args.options))
    print(f"{args.file}: signature {manifest.signature}")  # type: ignore[attr-defined]
    print("Loading it would import and call (read from its pickles, nothing was run):")
    for (module, name), users in sorted(found.items()):
        who = ", ".join(sorted(set(users)))
        what = f"{clean(module, 60)}.{clean(name, 60)}" if name else f"import {clean(module, 60)}"
        print(f"  {what}  (for {clean(who, 60)})")
    if not found:
        print("  nothing")
    from .session._replay import recorded_cells

    cells = recorded_cells(manifest)  # type: ignore[arg-type]
    if cells:
        print("and with replay=True it would run these recorded cells, as needed:")
        for number, cell in sorted(cells.items()):
            effects = "; ".join(cell["effects"])
            print(f"  cell {number}" + (f"  ({clean(effects, 200)}: not run unless "
                                        "replay='all')" if effects else ""))
            for line in cell["code"].splitlines():
                print(f"    | {clean(line, 200)}")
    if not args.yes:
        if not sys.stdin.isatty():
            print("not trusted: pass --yes to trust it without a prompt", file=sys.stderr)
            return 1
        if input("Trust this file? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not trusted")
            return 1
    add_trusted(manifest.manifest_digest, f"{args.file}")  # type: ignore[attr-defined]
    print(f"trusted: {manifest.manifest_digest}")  # type: ignore[attr-defined]
    return 0


def _key(args: argparse.Namespace) -> int:
    from .trust._keys import config_dir, new_key_text, rotate_key, user_key

    if args.action == "new":
        print(new_key_text())
        return 0
    if args.action == "rotate":
        old = user_key()
        new = rotate_key()
        print(f"retired key {old.id.hex()} (it still verifies files it signed); "
              f"new key {new.id.hex()}")
    else:
        source = "HIBERNATE_KEY" if os.environ.get("HIBERNATE_KEY") else config_dir()
        print(f"key id {user_key().id.hex()} (from {source})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ._run import run_script

    return run_script(args.script, args.args, args.save, args.on_error_only)


def _shell(args: argparse.Namespace) -> int:
    from ._run import open_shell

    return open_shell(args.file, trust=args.trust, use_ipython=not args.no_ipython)


def _abort_uploads(args: argparse.Namespace) -> int:
    from .storage._remote import abort_uploads

    keys = abort_uploads(args.url, _options(args.options), args.older_than)
    print(f"aborted {len(keys)} unfinished upload(s)" + "".join(f"\n  {k}" for k in keys))
    return 0


def _log(args: argparse.Namespace) -> int:
    import dataclasses

    from .checkpoints import Repo, log
    from .checkpoints._history import log_table

    opts = _options(args.options)
    found = log(args.store, all=args.all, storage_options=opts)
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in found], indent=2))
    elif found:
        print(log_table(found, Repo(args.store, opts).head()))
    else:
        print(f"{args.store}: no checkpoints")
    return 0


def _checkout(args: argparse.Namespace) -> int:
    """Check a checkpoint out as a .hib file (a shell has no live namespace to restore to):
    the checkpoint's chunks and signature copied as they are, and HEAD moved to it."""
    from .checkpoints import Repo, export_checkpoint

    opts = _options(args.options)
    repo = Repo(args.store, opts)
    cid = repo.full_id(args.id) if args.id else repo.head()
    if cid is None:
        print(f"{args.store} has no checkpoints", file=sys.stderr)
        return 1
    output = args.output or f"{cid}.hib"
    export_checkpoint(args.store, cid, output, storage_options=opts)
    with repo.lock():
        if repo.exists(cid):
            repo.set_head(cid)
    print(f"checked out {cid} to {output} (HEAD is now {cid})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .checkpoints import export_checkpoint

    export_checkpoint(args.store, args.id, args.path, storage_options=_options(args.options))
    print(f"exported {args.id} to {args.path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .checkpoints import import_checkpoint

    c = import_checkpoint(args.path, args.store, message=args.message,
                          storage_options=_options(args.options))
    print(f"imported {args.path} as {c.id} ({c.bytes_written} new bytes)")
    return 0


def _prune(args: argparse.Namespace) -> int:
    import datetime

    from .checkpoints import prune

    within = None if args.keep_within is None else datetime.timedelta(hours=args.keep_within)
    removed = prune(args.store, keep_last=args.keep_last, keep_within=within,
                    storage_options=_options(args.options))
    print(f"removed {len(removed)} checkpoint(s)" + "".join(f"\n  {r}" for r in removed))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from .checkpoints import diff

    d = diff(args.a, args.b, store=args.store, storage_options=_options(args.options))
    if args.json:
        print(json.dumps([dict(zip(("change", "name", "before", "after"),
                                   (c, n, *d.sizes[n]))) for c, n, _, _ in d.rows()], indent=2))
    else:
        print(d)
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from .viewer._app import serve
    except ImportError as e:
        print(f"hibernate serve needs the viewer extra ({e.name} is missing): "
              "pip install 'hibernate[viewer]'", file=sys.stderr)
        return 2

    def announce(url: str) -> None:
        print(f"hibernate viewer at {url}\n(Ctrl-C to stop)", flush=True)

    serve(args.paths, args.port, _options(args.options), announce)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import VERSION

    p = argparse.ArgumentParser(prog="hibernate", description="Save and restore Python sessions.")
    p.add_argument("--version", action="version", version=f"hibernate {VERSION}")
    sub = p.add_subparsers(dest="command", required=True)
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("-o", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="an fsspec storage option (repeatable)")
    ins = sub.add_parser("inspect", parents=[remote],
                         help="show what a file holds (runs no code from it)")
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ins.set_defaults(func=_inspect)
    ver = sub.add_parser("verify", parents=[remote],
                         help="check every chunk digest and the signature (of a file, or of "
                         "every checkpoint in a store)")
    ver.add_argument("file")
    ver.set_defaults(func=_verify)
    tr = sub.add_parser("trust", parents=[remote],
                        help="show what a file would import and call, then trust it")
    tr.add_argument("file")
    tr.add_argument("--yes", action="store_true", help="trust without asking")
    tr.set_defaults(func=_trust)
    key = sub.add_parser("key", help="show your key id, rotate your key, or print a new key "
                         "for HIBERNATE_KEY")
    key.add_argument("action", choices=["id", "rotate", "new"], nargs="?", default="id")
    key.set_defaults(func=_key)
    run = sub.add_parser("run", help="run a script, then save its session (post-mortem on a "
                         "crash)")
    run.add_argument("--save", metavar="PATH", help="where to save (default: SCRIPT.hib)")
    run.add_argument("--on-error-only", action="store_true",
                     help="save only when the script fails")
    run.add_argument("script")
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)
    sh = sub.add_parser("shell", help="open IPython (or the plain REPL) on a saved session")
    sh.add_argument("file")
    sh.add_argument("--trust", action="store_true", help="trust the file (runs its code)")
    sh.add_argument("--no-ipython", action="store_true", help="use the plain Python REPL")
    sh.set_defaults(func=_shell)
    ab = sub.add_parser("abort-uploads", parents=[remote],
                        help="abort unfinished S3 multipart uploads left by killed saves")
    ab.add_argument("url", help="s3://bucket/prefix")
    ab.add_argument("--older-than", type=float, default=3600.0, metavar="SECONDS",
                    help="spare uploads started more recently (default 3600)")
    ab.set_defaults(func=_abort_uploads)
    lg = sub.add_parser("log", parents=[remote], help="list a checkpoint store's history")
    lg.add_argument("store")
    lg.add_argument("--all", action="store_true", help="every checkpoint, branches included")
    lg.add_argument("--json", action="store_true", help="print the checkpoints as JSON")
    lg.set_defaults(func=_log)
    co = sub.add_parser("checkout", parents=[remote],
                        help="write a checkpoint out as a .hib file and make it HEAD")
    co.add_argument("store")
    co.add_argument("id", nargs="?", help="checkpoint id or prefix (default: HEAD)")
    co.add_argument("--output", help="the .hib file to write (default: ID.hib)")
    co.set_defaults(func=_checkout)
    ex = sub.add_parser("export", parents=[remote], help="export a checkpoint to a .hib file")
    ex.add_argument("store")
    ex.add_argument("id")
    ex.add_argument("path")
    ex.set_defaults(func=_export)
    im = sub.add_parser("import", parents=[remote], help="import a .hib file as a checkpoint")
    im.add_argument("store")
    im.add_argument("path")
    im.add_argument("-m", "--message", default=None)
    im.set_defaults(func=_import)
    pr = sub.add_parser("prune", parents=[remote],
                        help="remove old checkpoints and the chunks only they needed")
    pr.add_argument("store")
    pr.add_argument("--keep-last", type=int, default=None)
    pr.add_argument("--keep-within", type=float, default=None, metavar="HOURS")
    pr.set_defaults(func=_prune)
    df = sub.add_parser("diff", parents=[remote],
                        help="variables added, removed, changed between two files or ids")
    df.add_argument("a")
    df.add_argument("b")
    df.add_argument("--store", default=None, help="a and b are checkpoint ids in this store")
    df.add_argument("--json", action="store_true", help="print the changes as JSON (sizes in "
                    "bytes)")
    df.set_defaults(func=_diff)
    sv = sub.add_parser("serve", parents=[remote],
                        help="see files and checkpoint stores in a browser (127.0.0.1, with a "
                        "token; reads only, runs no code from them)")
    sv.add_argument("paths", nargs="+", metavar="PATH_OR_STORE")
    sv.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    sv.set_defaults(func=_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; everything it prints goes through the one output sanitizer (text from
    a file never reaches the terminal as control sequences)."""
    from ._reports import SanitizedStream

    args = build_parser().parse_args(argv)
    real = sys.stdout, sys.stderr
    if args.func not in (_shell, _run):  # those hand the terminal to the user's session
        sys.stdout, sys.stderr = SanitizedStream(real[0]), SanitizedStream(real[1])
    try:
        return int(args.func(args))
    except HibernateError as e:
        print(f"hibernate: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    finally:
        sys.stdout, sys.stderr = real


if __name__ == "__main__":
    sys.exit(main())
