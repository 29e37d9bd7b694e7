"""Make the golden file of a format version: `python tests/golden/make_golden.py`.

The file is committed; tests/test_golden.py checks that every later hibernate still reads it.
Run this only when a new format version is introduced (then commit v<N>.hib beside v1.hib).
"""

import os
import sys

os.environ["HIBERNATE_KEY"] = "hibernate-golden-key"

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


if __name__ == "__main__":
    version = sys.argv[1] if len(sys.argv) > 1 else "1"
    hibernate.save(os.path.join(HERE, f"v{version}.hib"), build(), compression="fast")
    print(f"wrote v{version}.hib")
