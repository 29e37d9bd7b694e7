"""Arrow data from a file (trust issue, items 3 and 8): an IPC body compressed inside the
stream is refused before it is decompressed (it went from 17 KB to 512 MB past the chunk
bound), and an untrusted file's Arrow columns may only be of plain types (an extension-
tagged field reached polars, which panicked and aborted the process). Each is checked on a
child process: it must exit normally, and its peak memory stay small."""

from __future__ import annotations

import signal
from pathlib import Path

import blake3

import hibernate
from memory import child

from .craft import manifest_of, rewrap

STRANGER = {"HIBERNATE_KEY": "5354524e47522d0f1e2d3c4b5a69780f1e2d3c4b5a6978"}


def _swap_blob(data: bytes, new: bytes) -> bytes:
    """The file with its only Arrow group's stream replaced by ``new`` (unsigned)."""
    m = manifest_of(data)
    group = next(g for g in m["groups"] if g["serializer"]["name"] in ("arrow", "polars"))
    body = bytes(32) + new  # the first chunk at offset 64, the header before it
    chunk = {"offset": 64, "raw": len(new), "stored": len(new), "codec": "raw",
             "digest": blake3.blake3(new).hexdigest()}
    m["blobs"] = [{"chunks": [chunk]}]
    group["blobs"] = [0]
    m["groups"] = [group]
    m["entries"] = [e for e in m["entries"] if e.get("group") == group["id"]]
    return rewrap(data, m, body=body)


def test_a_compressed_ipc_body_is_refused_before_it_expands(fresh) -> None:
    import pyarrow as pa

    hibernate.save(fresh.path / "s.hib", {"t": pa.table({"x": [1, 2, 3]})})
    big = pa.table({"x": pa.repeat(pa.scalar(0, pa.int64()), 64_000_000)})  # 512 MB
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, big.schema,
                           options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(big)
    bomb = sink.getvalue().to_pybytes()
    assert len(bomb) < 200_000
    data = (fresh.path / "s.hib").read_bytes()
    (fresh.path / "bomb.hib").write_bytes(_swap_blob(data, bomb))
    proc = fresh.run(child("""
        import json
        import pyarrow  # its libraries are not what is measured
        import hibernate
        start = reset_peak()
        r = hibernate.load("bomb.hib", {}, data_only=True)
        print(json.dumps({"failed": r.failed, "grew": peak_growth(start)}))
    """), check=False)
    assert proc.returncode == 0, proc.stderr
    got = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert "compressed" in got["failed"]["t"], got
    assert got["grew"] < 64 << 20, got


def test_an_extension_tagged_field_never_reaches_polars_from_an_untrusted_file(fresh) -> None:
    fresh.run("""
        import polars as pl, pyarrow as pa
        import hibernate
        frame = pl.DataFrame({"x": [1, 2, 3]})
        hibernate.save("s.hib")
    """, env=STRANGER)
    import pyarrow as pa

    field = pa.field("x", pa.int64(), metadata={b"ARROW:extension:name": b"polars.object",
                                                b"ARROW:extension:metadata": b"\x00" * 8})
    table = pa.table([pa.array([1, 2, 3])], schema=pa.schema([field]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    data = (fresh.path / "s.hib").read_bytes()
    (fresh.path / "tagged.hib").write_bytes(_swap_blob(data, sink.getvalue().to_pybytes()))
    proc = fresh.run("""
        import json
        import hibernate
        r = hibernate.load("tagged.hib", {}, data_only=True)
        print(json.dumps(r.failed))
    """, check=False)
    assert proc.returncode not in (-signal.SIGABRT, -signal.SIGSEGV), proc.stderr
    assert proc.returncode == 0, proc.stderr
    failed = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert "extension" in failed["frame"], failed


def test_a_time_zone_that_is_a_path_is_refused_even_from_a_trusted_file(fresh) -> None:
    """A frame whose column labels are an Arrow timestamp with the time zone
    ``dateutil//etc/passwd`` made pandas open /etc/passwd once looked at, even when the
    file was trusted (found by the decoder fuzzer, seed 201; untrusted files were already
    refused). Every Arrow time zone must be a name, whatever the trust: checked with an
    audit hook on the process that decodes it."""
    case = Path(__file__).parent / "cases" / "time_zone_path_in_column_labels.json"
    got = fresh.json(f"""
        import base64, json, sys
        import pandas, pyarrow
        from hibernate import serializers
        case = json.load(open({str(case)!r}))
        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0]))
                         if event == "open" and "passwd" in str(args[0]) else None)
        try:
            frame = serializers.get("pandas").load(
                case["meta"], [base64.b64decode(b) for b in case["buffers"]])
            outcome = "loaded"
            try:  # what a user does next: look at it
                repr(frame), list(frame.columns)
            except Exception:
                pass
        except ValueError as e:
            outcome = str(e)
        print(json.dumps({{"outcome": outcome, "opened": opened}}))
    """)
    assert got["opened"] == [] and "time zone that is not a name" in got["outcome"], got
