"""Make the golden files of a format version: `python tests/golden/make_golden.py 2`.

They are committed; tests/test_golden.py checks that every later hibernate still reads them.
Run this only when a new format version is introduced (then commit what it wrote beside the
older versions' files). What each version wrote:

- ``1``: ``v1.hib`` (numpy, pickle by value and by reference, shared identity, zstd);
  ``v1-store/`` was made by hibernate 0.1.0 itself with ``make_v1_store.py``.
- ``2``: ``v2.hib`` (every serializer: numpy, pandas, Arrow, polars, pickle; a placeholder;
  zstd-compressed; signed with the golden key) and ``v2-store/`` (a checkpoint store of two
  checkpoints, the second compressed).
"""

import os
import shutil
import sys
import threading

# format 1's golden files were signed with the passphrase "hibernate-golden-key", which
# hibernate 0.2 refuses as a key; format 2's with this (hex of "hibernate-golden-key-v2")
GOLDEN_KEY = "68696265726e6174652d676f6c64656e2d6b65792d7632"
os.environ["HIBERNATE_KEY"] = GOLDEN_KEY

import hibernate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build() -> dict:
    import collections
    import datetime
    import decimal

    import numpy as np

    ns: dict = {"__name__": "__main__", "np": np, "OrderedDict": collections.OrderedDict}
    exec(
        "LIMIT = 3\n"
        "def over(x):\n    return x > LIMIT\n"
        "class Box:\n    def __init__(self, v):\n        self.v = v\n"
        "    def twice(self):\n        return 2 * self.v\n",
        ns,
    )
    shared = [1, 2, 3]
    ns.update({
        "ints": np.arange(300_000, dtype=np.int64),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "text": np.array(["a", "bc"], dtype="U2"),
        "data": {"k": [1, 2.5, "x", b"y", None, True], "when": datetime.date(2026, 11, 24),
                 "dec": decimal.Decimal("1.25")},
        "shared": shared,
        "holder": {"ref": shared},
        "box": ns["Box"](21),
        "compressible": np.zeros(2_000_000, dtype=np.int32),
    })
    return ns


def build_v2() -> dict:
    """v1's session, plus a value of every native serializer and a placeholder."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    ns = build()
    ns.update({
        "frame": pd.DataFrame({"n": [1, 2, 3], "s": ["a", None, "c"],
                               "c": pd.Categorical(["x", "y", "x"])},
                              index=pd.Index([10, 20, 30], name="id")),
        "series": pd.Series([1.5, None, 3.0], name="f"),
        "table": pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}),
        "pframe": pl.DataFrame({"a": [1, 2], "b": ["u", "v"]}),
        "pair": [ns["shared"], threading.Lock()],  # the lock becomes a placeholder
    })
    return ns


def make_v2() -> None:
    hibernate.save(os.path.join(HERE, "v2.hib"), build_v2(), compression="fast")
    store = os.path.join(HERE, "v2-store")
    shutil.rmtree(store, ignore_errors=True)
    ns = build()
    del ns["compressible"], ns["ints"]
    ns["arr"] = __import__("numpy").arange(20_000, dtype="int64")
    hibernate.checkpoint(store, ns, message="first")
    ns["arr"][:10] = -1
    ns["data"] = {"k": "second"}
    hibernate.checkpoint(store, ns, message="second", compression="fast")


if __name__ == "__main__":
    version = sys.argv[1] if len(sys.argv) > 1 else "2"
    if version == "1":
        hibernate.save(os.path.join(HERE, "v1.hib"), build(), compression="fast")
    elif version == "2":
        make_v2()
    else:
        sys.exit(f"no golden files for format version {version}")
    print(f"wrote the golden files of format version {version}")
