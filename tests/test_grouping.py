"""Grouping: variables that share objects with identity are saved together; others are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hibernate

DEFS = '''
class Point:
    registry = []
    def __init__(self, x):
        self.x = x
    def get(self):
        return super().__repr__() and self.x
def make():
    n = [0]
    def inc():
        n[0] += 1
    def get():
        return n[0]
    return inc, get
def helper(v):
    return v
'''


def groups_of(tmp_path, ns) -> set[tuple[str, ...]]:
    p = tmp_path / "g.hib"
    hibernate.save(p, ns)
    return {g.names for g in hibernate.inspect(p).groups}


def session() -> dict:
    ns: dict = {"__name__": "__main__"}
    exec(DEFS, ns)
    exec("p1 = Point(1); p2 = Point(2); inc, get = make()", ns)
    return ns


def test_instances_of_one_class_stay_independent(tmp_path) -> None:
    ns = session()
    got = groups_of(tmp_path, ns)
    assert ("p1",) in got and ("p2",) in got and ("Point",) in got


def test_closures_sharing_a_cell_are_grouped(tmp_path) -> None:
    assert ("inc", "get") in groups_of(tmp_path, session())


def test_shared_inner_atom_only_dict_is_grouped(tmp_path) -> None:
    inner = {"x": 1}
    got = groups_of(tmp_path, {"outer": {"k": inner}, "alias": inner, "other": {"x": 1}})
    assert ("outer", "alias") in got and ("other",) in got


def test_functions_held_in_containers_keep_identity(tmp_path) -> None:
    ns = session()
    exec("callbacks = [helper]", ns)
    got = groups_of(tmp_path, ns)
    assert ("helper", "callbacks") in got
    out: dict = {}
    hibernate.load(tmp_path / "g.hib", out)
    assert out["callbacks"][0] is out["helper"]


def test_arrays_and_frames_are_not_tied_by_their_dtypes(tmp_path) -> None:
    ns = {"a": np.zeros(10), "b": np.ones(10), "c": pd.Categorical(["x", "y"]),
          "d": pd.Categorical(["x", "y"]), "f1": pd.DataFrame({"v": [1.0]}),
          "f2": pd.DataFrame({"v": [2.0]})}
    got = groups_of(tmp_path, ns)
    assert got == {("a",), ("b",), ("c",), ("d",), ("f1",), ("f2",)}


def test_a_view_restores_as_an_equal_independent_array(tmp_path) -> None:
    """Pickle does not keep views (even within one stream); the README lists this limit."""
    base = np.arange(10)
    hibernate.save(tmp_path / "g.hib", {"base": base, "view": base[2:5]})
    out: dict = {}
    hibernate.load(tmp_path / "g.hib", out)
    np.testing.assert_array_equal(out["view"], [2, 3, 4])
    out["base"][2] = 99
    assert out["view"][0] == 2


@pytest.mark.parametrize("n", [1, 3])
def test_mutation_through_alias_after_load(tmp_path, n: int) -> None:
    shared = [0] * n
    hibernate.save(tmp_path / "g.hib", {"a": shared, "b": {"ref": shared}})
    out: dict = {}
    hibernate.load(tmp_path / "g.hib", out)
    out["a"].append("new")
    assert out["b"]["ref"][-1] == "new"


def test_identity_survives_when_one_group_member_cannot_be_pickled(tmp_path) -> None:
    import socket

    shared = [1, 2]
    ns = {"a": shared, "b": {"k": shared}, "bad": [shared, socket.socket()]}
    r = hibernate.save(tmp_path / "g.hib", ns)
    assert "bad" not in r.skipped
    assert [p.message for p in r.placeholders["a, b, bad"]] == [
        "socket.socket: TypeError: cannot pickle 'socket' object"]
    out: dict = {}
    hibernate.load(tmp_path / "g.hib", out)
    assert out["b"]["k"] is out["a"] and out["bad"][0] is out["a"]
    assert isinstance(out["bad"][1], hibernate.Placeholder)
    with pytest.raises(hibernate.PlaceholderError, match="socket.socket"):
        out["bad"][1].acquire()
