"""Demo, part 2: a fresh process restores the session and checks it against the original."""

import json
import sys

import hibernate

path = sys.argv[1]
print(hibernate.inspect(path))
print()
report = hibernate.load(path)
print(report)

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from demo_session import fingerprint  # noqa: E402  (the same digest code, not the same data)

with open(path + ".expected.json") as f:
    expected = json.load(f)
got = fingerprint(globals())
print()
for key in expected:
    print(f"  {key:14} {'equal' if got[key] == expected[key] else 'DIFFERENT'}")
bad = [k for k in expected if got[k] != expected[k]]
assert isinstance(model, LinearModel) and model.ridge == 0.0  # noqa: F821
if bad or report.failed:
    sys.exit(f"restored session differs from the original: {bad or report.failed}")
print("\nThe restored session equals the original.")
