"""Widgets (whole-session issue, item 4): ipywidgets values are saved by their state, not
skipped as kernel machinery for the comm they hold, and come back in a fresh kernel as new
live widgets in that state, a box still holding the very slider bound to its own name."""

from __future__ import annotations

from pathlib import Path

import pytest

import hibernate

pytest.importorskip("ipywidgets")
pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from test_jupyter import Kernel  # noqa: E402

BUILD = """
import ipywidgets as widgets
level = widgets.IntSlider(value=7, min=0, max=20, description="level")
name = widgets.Text(value="sensor-3")
row = widgets.HBox([level, name])
choice = widgets.Dropdown(options=[("mean", 1), ("median", 1), ("max", 2)], index=1)
choice.add_class("wide")
picks = widgets.SelectMultiple(options=[1, 2, 3], value=(1, 3))
level.value = 12
row.layout.width = "50%"
"""

CHECK = """
import json
print(json.dumps({
    "types": [type(v).__name__ for v in (level, name, row, choice, picks)],
    "values": [level.value, level.max, name.value, choice.label, list(picks.value),
               list(choice._dom_classes)],
    "same": row.children[0] is level and row.children[1] is name,
    "width": row.layout.width,
    "live": bool(level.model_id) and level.comm is not None,
}))
"""


def test_widgets_come_back_live_in_a_fresh_kernel(tmp_path: Path) -> None:
    k = Kernel(tmp_path)
    try:
        assert k.run(BUILD)["error"] is None
        out = k.run("%load_ext hibernate\n%hibernate save w.hib")
        assert out["error"] is None, out
    finally:
        k.close()
    m = hibernate.inspect(tmp_path / "w.hib")  # saved, not skipped for the comm they hold
    assert {e.name: str(e.how) for e in m.entries if e.name in (
        "level", "name", "row", "choice", "picks")} == dict.fromkeys(
        ("level", "name", "row", "choice", "picks"), "reopened")
    k = Kernel(tmp_path)
    try:
        out = k.run("%load_ext hibernate\n%hibernate load w.hib")
        assert out["error"] is None, out
        got = k.json(CHECK)
    finally:
        k.close()
    assert got == {"types": ["IntSlider", "Text", "HBox", "Dropdown", "SelectMultiple"],
                   "values": [12, 20, "sensor-3", "median", [1, 3], ["wide"]], "same": True,
                   "width": "50%", "live": True}
