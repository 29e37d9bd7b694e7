"""How ``v1-store/`` was made: with hibernate 0.1.0 (format 1), not with this one.

    pip install --target /tmp/old tests/golden/readers/hibernate-0.1.0-py3-none-any.whl
    PYTHONPATH=/tmp/old python tests/golden/make_v1_store.py tests/golden/v1-store
"""

import os
import sys

os.environ["HIBERNATE_KEY"] = "hibernate-golden-key"
import numpy as np

import hibernate

assert hibernate.__version__ == "0.1.0", hibernate.__file__
out = sys.argv[1]
ns = {"__name__": "__main__", "arr": np.arange(20_000, dtype=np.int64), "note": "first",
      "cfg": {"k": [1, 2, 3]}}
ns["alias"] = ns["cfg"]
hibernate.checkpoint(out, ns, message="first")
ns["note"] = "second"
ns["arr"][:10] = -1
hibernate.checkpoint(out, ns, message="second")
print([c.message for c in hibernate.log(out)])
