"""The ``hibernate`` command line: a thin front end over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import _api
from .errors import HibernateError

__all__ = ["main"]


def _inspect(args: argparse.Namespace) -> int:
    manifest = _api.inspect(args.file)
    if args.json:
        d = manifest.to_dict()
        d["signature"] = manifest.signature
        print(json.dumps(d, indent=2))
    else:
        print(manifest)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ._format import BlobReader, read_manifest
    from ._trust import user_keys
    from .storage import resolve

    store, key = resolve(args.file)
    bad = 0
    with store.open_read(key) as src:
        manifest = read_manifest(src, user_keys())
        reader = BlobReader(src, manifest)
        for i in range(len(manifest.blobs)):
            try:
                reader.read(i)
            except HibernateError as e:
                bad += 1
                names = [n for g in manifest.groups if i in g.blobs for n in g.names]
                print(f"blob {i} ({', '.join(names)}): {e}")
    total = sum(b.length for b in manifest.blobs)
    state = "OK" if not bad else f"{bad} damaged blob(s)"
    print(f"{args.file}: {state}; {len(manifest.blobs)} blobs, {total} bytes checked; "
          f"signature {manifest.signature}")
    return 0 if not bad else 1


def build_parser() -> argparse.ArgumentParser:
    from ._meta import VERSION

    p = argparse.ArgumentParser(prog="hibernate", description="Save and restore Python sessions.")
    p.add_argument("--version", action="version", version=f"hibernate {VERSION}")
    sub = p.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect", help="show what a file holds (runs no code from it)")
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="print the manifest as JSON")
    ins.set_defaults(func=_inspect)
    ver = sub.add_parser("verify", help="check every chunk digest and the signature")
    ver.add_argument("file")
    ver.set_defaults(func=_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HibernateError as e:
        print(f"hibernate: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
