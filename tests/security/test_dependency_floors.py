"""The declared floors of native dependencies are past their known deserialization CVEs
(trust issue, item 4: ``pyarrow>=14`` admitted 14.0.0, which unpickles extension-type
metadata, so ``data_only=True`` ran code there). Read from pyproject.toml itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]

# package -> (the first release without the hole, the advisory)
FIXED_IN = {
    "pyarrow": ("14.0.1", "CVE-2023-47248: arbitrary code from IPC/Parquet extension types"),
    "numpy": ("1.16.3", "CVE-2019-6446: numpy.load unpickled object arrays by default"),
}


def _floors() -> list[tuple[str, Version | None, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += [s for s in extra if not s.startswith("hibernate")]
    found = []
    for spec in specs:
        req = Requirement(spec)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", ">", "==")]
        found.append((req.name.lower(), max(lows) if lows else None, spec))
    return found


def test_every_native_dependency_floor_is_past_its_known_cves() -> None:
    seen = set()
    for name, floor, spec in _floors():
        if name not in FIXED_IN:
            continue
        seen.add(name)
        fixed, advisory = FIXED_IN[name]
        assert floor is not None and floor >= Version(fixed), f"{spec}: {advisory}"
    assert seen == set(FIXED_IN), "a dependency with a known advisory is no longer declared"


def test_the_installed_versions_meet_the_floors() -> None:
    import importlib.metadata as md

    for name, (fixed, advisory) in FIXED_IN.items():
        installed = Version(re.sub(r"[^0-9.].*", "", md.version(name)))
        assert installed >= Version(fixed), f"{name} {installed}: {advisory}"
