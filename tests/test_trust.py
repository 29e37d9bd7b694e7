"""Trust: inspecting runs nothing, untrusted files run nothing, trust is the user's choice.

Malicious files are made by a "stranger" process with another key; every check runs in a
fresh process with an audit hook that records every pickle global lookup, import, exec,
os.system and subprocess start, plus a canary file that the payloads would create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hibernate

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}

MALICIOUS = """
import builtins, importlib, os, subprocess
import hibernate
CANARY = os.path.abspath("CANARY")
class System:
    def __reduce__(self):
        return (os.system, (f"touch {CANARY}",))
class Eval:
    def __reduce__(self):
        return (builtins.eval, (f"open({CANARY!r}, 'w')",))
class Importer:
    def __reduce__(self):
        return (importlib.import_module, ("this",))
class Spawn:
    def __reduce__(self):
        return (subprocess.call, (["touch", CANARY],))
class Chain:
    def __reduce__(self):
        return (getattr, (os, "system"))
system = System()
evaled = Eval()
imported = Importer()
spawned = Spawn()
chained = [Chain()]
numbers = [1, 2.5, {"k": (3, 4)}]
import numpy as np
arr = np.arange(6.0).reshape(2, 3)
del System, Eval, Importer, Spawn, Chain
hibernate.save("evil.hib")
"""

# Runs in the checking process before anything else: record what would be run.
AUDIT = """
import json, os, sys
EVENTS = []
WATCH = ("os.system", "subprocess.Popen", "exec", "compile", "pickle.find_class", "import",
         "os.exec", "os.posix_spawn", "os.spawn")
def hook(event, args):
    if event.startswith(WATCH):
        EVENTS.append([event, [repr(a)[:80] for a in args[:2]]])
sys.addaudithook(hook)
def report(**extra):
    finds = [a for e, a in EVENTS if e == "pickle.find_class"]
    bad = [e for e, _ in EVENTS if e.startswith(("os.system", "subprocess", "os.exec",
                                                  "os.posix_spawn", "os.spawn"))]
    print(json.dumps({"finds": finds, "bad": bad, "canary": os.path.exists("CANARY"),
                      "imported_this": "this" in sys.modules, **extra}))
"""


@pytest.fixture
def evil(fresh):  # type: ignore[no-untyped-def]
    fresh.run(MALICIOUS, env=STRANGER)
    assert (fresh.path / "evil.hib").exists() and not (fresh.path / "CANARY").exists()
    return fresh


def test_inspect_and_open_run_nothing(evil) -> None:
    got = evil.json(AUDIT + """
import hibernate
m = hibernate.inspect("evil.hib")
text = str(m)
with hibernate.open("evil.hib") as snap:
    keys = sorted(snap)
EVENTS.clear()
m = hibernate.inspect("evil.hib")
with hibernate.open("evil.hib") as snap:
    keys = sorted(snap)
report(keys=keys, sig=m.signature)
""")
    assert got["finds"] == [] and got["bad"] == [] and got["canary"] is False
    assert got["sig"] == "foreign" and "system" in got["keys"]


def test_untrusted_load_refuses_before_running_anything(evil) -> None:
    got = evil.json(AUDIT + """
import hibernate
EVENTS.clear()
try:
    hibernate.load("evil.hib")
    outcome = "loaded"
except hibernate.UntrustedFileError as e:
    outcome = sorted(e.names)
try:
    with hibernate.open("evil.hib") as snap:
        snap["system"]
    opened = "ran"
except hibernate.UntrustedFileError:
    opened = "refused"
report(outcome=outcome, opened=opened, bound="system" in globals())
""")
    payloads = {"chained", "evaled", "imported", "spawned", "system"}
    # every pickled entry needs code (even plain data: unpickling is running code), the
    # natively stored array does not
    assert payloads | {"numbers", "CANARY"} <= set(got["outcome"])
    assert "arr" not in got["outcome"]
    assert got["opened"] == "refused" and got["bound"] is False
    assert got["finds"] == [] and got["bad"] == [] and got["canary"] is False


def test_data_only_loads_data_and_runs_nothing(evil) -> None:
    got = evil.json(AUDIT + """
import hibernate
import numpy
EVENTS.clear()
r = hibernate.load("evil.hib", data_only=True)
with hibernate.open("evil.hib", data_only=True) as snap:
    try:
        snap["evaled"]
        lazy = "ran"
    except hibernate.UntrustedFileError:
        lazy = "refused"
    lazy_numbers = snap["numbers"]
refs = hibernate.load("evil.hib", {}, data_only=True, include=["np", "subprocess"])
report(restored=sorted(r.restored), untrusted=sorted(n for n, s in r.skipped.items()
       if s.code == "untrusted"), numbers=numbers, arr=arr.tolist(), lazy=lazy,
       lazy_numbers=lazy_numbers, references=sorted(n for n, s in r.skipped.items()
                                                    if s.code == "reference"),
       asked=sorted(refs.restored), asked_untrusted=sorted(refs.skipped))
""")
    assert got["bad"] == [] and got["canary"] is False and got["imported_this"] is False
    assert set(got["finds"]) <= {str(["'builtins'", "'dict'"])}  # nothing but data types
    assert got["numbers"] == [1, 2.5, {"k": [3, 4]}] and got["arr"] == [[0, 1, 2], [3, 4, 5]]
    assert {"numbers", "arr"} <= set(got["restored"]) and "np" not in got["restored"]
    payloads = {"chained", "evaled", "imported", "spawned", "system"}
    assert payloads <= set(got["untrusted"]) and "numbers" not in got["untrusted"]
    assert {"np", "subprocess"} <= set(got["references"])  # data only: references listed
    assert got["asked"] == ["np"]  # bound when asked for by name and already imported
    assert "subprocess" in got["asked_untrusted"]  # not imported here: nothing new is
    assert got["lazy"] == "refused" and got["lazy_numbers"] == got["numbers"]


def test_trust_command_shows_the_payload_then_trust_list_lets_it_load(evil) -> None:
    cli = [sys.executable, "-m", "hibernate"]
    env = {**os.environ}
    shown = subprocess.run([*cli, "trust", "evil.hib"], cwd=evil.path, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, env=env, check=False)
    assert shown.returncode == 1 and "--yes" in shown.stderr  # no prompt without a terminal
    for payload in ("posix.system", "builtins.eval", "importlib.import_module",
                    "subprocess.call", "builtins.getattr"):
        assert payload in shown.stdout, payload
    assert not (evil.path / "CANARY").exists()
    ok = subprocess.run([*cli, "trust", "--yes", "evil.hib"], cwd=evil.path,
                        capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0 and "trusted:" in ok.stdout
    assert not (evil.path / "CANARY").exists()
    # Now the user has chosen to trust it: a plain load runs it.
    evil.run("import hibernate\nr = hibernate.load('evil.hib')\nassert r.trusted\n")
    assert (evil.path / "CANARY").exists()


def test_trust_true_loads_a_foreign_file(evil) -> None:
    got = evil.json("import hibernate, json\nr = hibernate.load('evil.hib', trust=True)\n"
                    "print(json.dumps({'failed': r.failed, 'numbers': numbers}))\n")
    assert got["failed"] == {} and (evil.path / "CANARY").exists()


def test_rotated_key_still_verifies_old_files_and_signs_new_ones(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.delenv("HIBERNATE_KEY")
    hibernate.save(tmp_path / "old.hib", {"x": [1]})
    from hibernate.trust._keys import rotate_key, user_key

    before = user_key().id
    assert rotate_key().id != before
    hibernate.save(tmp_path / "new.hib", {"y": [2]})
    assert hibernate.inspect(tmp_path / "old.hib").signature == "valid"
    assert hibernate.inspect(tmp_path / "new.hib").signature == "valid"
    ns: dict = {}
    hibernate.load(tmp_path / "old.hib", ns)
    assert ns == {"x": [1]}


def test_key_file_is_private_and_never_overwritten(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HIBERNATE_KEY")
    from hibernate.trust._keys import KEY_FILE, config_dir, user_key

    first = user_key()
    path = Path(config_dir()) / KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert user_key() == first and path.read_bytes() == first.secret


def test_stripped_signature_makes_the_file_untrusted_not_tampered(tmp_path: Path) -> None:
    import struct
    import zlib

    p = tmp_path / "s.hib"
    hibernate.save(p, {"x": [1, 2]})
    data = bytearray(p.read_bytes())
    t = len(data) - 128
    data[t + 48:t + 96] = bytes(48)                    # key id and MAC
    data[t + 100:t + 104] = struct.pack("<I", 0)       # flags
    data[t + 116:t + 120] = struct.pack("<I", zlib.crc32(bytes(data[t:t + 116])))
    p.write_bytes(bytes(data))
    assert hibernate.inspect(p).signature == "unsigned"
    with pytest.raises(hibernate.UntrustedFileError):
        hibernate.load(p, {})
    ns: dict = {}
    hibernate.load(p, ns, data_only=True)
    assert ns == {"x": [1, 2]}


def test_error_message_says_how_to_trust(evil) -> None:
    proc = evil.run("import hibernate\nhibernate.load('evil.hib')\n", check=False)
    assert "UntrustedFileError" in proc.stderr
    for hint in ("trust=True", "hibernate trust", "data_only=True"):
        assert hint in proc.stderr


def test_trust_list_is_keyed_by_manifest_digest(tmp_path: Path) -> None:
    from hibernate.trust._keys import add_trusted, is_trusted

    m = hibernate.inspect(_saved(tmp_path))
    assert not is_trusted("0" * 64)
    add_trusted(m.manifest_digest, "note")
    add_trusted(m.manifest_digest, "again")
    assert is_trusted(m.manifest_digest)
    lines = (Path(os.environ["HIBERNATE_CONFIG_DIR"]) / "trusted").read_text().splitlines()
    assert len(lines) == 1


def _saved(tmp_path: Path) -> Path:
    p = tmp_path / "t.hib"
    hibernate.save(p, {"v": 1})
    return p


def test_cli_key_id(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "hibernate", "key"], capture_output=True,
                         text=True, check=True)
    assert "key id" in out.stdout and "HIBERNATE_KEY" in out.stdout
    json.dumps(out.stdout)


def test_a_chunk_swapped_in_from_another_file_fails_its_entry(tmp_path: Path) -> None:
    a, b = tmp_path / "a.hib", tmp_path / "b.hib"
    hibernate.save(a, {"x": bytes(range(256)) * 400, "y": [1, 2, 3]})
    hibernate.save(b, {"x": bytes(reversed(range(256))) * 400, "y": [1, 2, 3]})
    ma, mb = hibernate.inspect(a), hibernate.inspect(b)
    ca = ma.blobs[ma.groups[[g.names for g in ma.groups].index(("x",))].blobs[0]].chunks[0]
    cb = mb.blobs[mb.groups[[g.names for g in mb.groups].index(("x",))].blobs[0]].chunks[0]
    assert ca.stored == cb.stored
    data = bytearray(a.read_bytes())
    data[ca.offset:ca.offset + ca.stored] = b.read_bytes()[cb.offset:cb.offset + cb.stored]
    a.write_bytes(bytes(data))
    ns: dict = {}
    r = hibernate.load(a, ns)
    assert list(r.failed) == ["x"] and "digest" in r.failed["x"]
    assert ns == {"y": [1, 2, 3]}
