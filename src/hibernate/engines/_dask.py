"""Dask collections: data frames and series as Parquet partitions, arrays as ``.npy`` blocks,
written and read by the cluster's workers.

Writing runs one task per partition on the collection's scheduler (the active
``distributed.Client`` when there is one, so a persisted collection is written where it
lives): each task encodes its partition, hashes the bytes (BLAKE3), writes them under the
save's prefix through fsspec and returns (size, digest, rows, its process id and host).
Restoring builds a lazy collection (``from_map`` / ``from_delayed``) whose tasks read a
partition, check its digest and decode it with pyarrow or numpy's ``.npy`` reader
(``allow_pickle=False``): no code from the file runs, so it loads with ``data_only``.

The policy (``choose``): a collection that holds live futures (persisted, or computed on
a cluster) or whose graph would embed more than ``GRAPH_MAX`` bytes is written as data; a
small lazy graph (reading files, say) is saved as its graph (a pickle: it needs trust);
``engines="write" | "graph" | "skip"`` overrides.
"""

from __future__ import annotations

import base64
import io
import os
import posixpath
import socket
from typing import Any

from ..errors import EngineError
from ._location import WRITING, Location

__all__ = ["DaskEngine"]

GRAPH_MAX = 1 << 20  # a lazy graph pickled larger than this is written as data instead
_PLAIN_KINDS = frozenset("biufcmM")


def _modules() -> tuple[Any, Any, Any]:
    """dask, dask.array and dask.dataframe (typed loosely: dask ships no stubs)."""
    import dask
    import dask.array
    import dask.dataframe

    return dask, dask.array, dask.dataframe


def _kind(value: object) -> str | None:
    _, da, dd = _modules()

    if isinstance(value, dd.DataFrame):
        return "dataframe"
    if isinstance(value, dd.Series):
        return "series"
    if isinstance(value, da.Array):
        return "array"
    return None


def _holds_futures(value: Any) -> bool:
    try:
        from distributed import Future
    except ImportError:
        return False
    graph = value.__dask_graph__()
    return any(isinstance(v, Future) for v in dict(graph).values())


def _graph_size(value: object) -> int:
    import cloudpickle  # type: ignore[import-untyped]

    try:
        return len(cloudpickle.dumps(value))
    except Exception:
        return GRAPH_MAX + 1  # cannot be saved as a graph: written as data


# ---- tasks that run on the workers ----------------------------------------------------------

def _digest(data: Any) -> str:
    import blake3

    return str(blake3.blake3(memoryview(data)).hexdigest())


def _put(url: str, data: Any, storage_options: dict[str, Any]) -> dict[str, Any]:
    """Write one partition's bytes while its save is still writing (see
    ``Location.marker``)."""
    import fsspec  # type: ignore[import-untyped]

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    marker = posixpath.join(posixpath.dirname(path), WRITING)
    if not fs.exists(marker):
        raise EngineError("the save this partition belongs to has ended")
    view = memoryview(data)
    with fs.open(path, "wb") as f:
        f.write(view)
    if not fs.exists(marker):  # the save failed while this task wrote: take it back
        fs.rm(path)
        raise EngineError("the save this partition belongs to has ended")
    return {"size": view.nbytes, "blake3": _digest(view),
            "writer": {"pid": os.getpid(), "host": socket.gethostname()}}


def _get(url: str, part: dict[str, Any], storage_options: dict[str, Any]) -> bytes:
    import fsspec

    with fsspec.open(url, "rb", **storage_options) as f:
        data: bytes = f.read(part["size"] + 1)
    if len(data) != part["size"] or _digest(data) != part.get("blake3"):
        raise EngineError(f"damaged engine data: {url} does not match its recorded digest")
    return data


def _write_frame_part(frame: Any, url: str, schema: bytes,
                      storage_options: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    frame = frame.to_frame() if frame.ndim == 1 else frame
    table = pa.Table.from_pandas(frame, schema=pa.ipc.read_schema(pa.py_buffer(schema)),
                                 preserve_index=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return {**_put(url, sink.getvalue(), storage_options), "rows": len(frame)}


def _read_frame_part(part: dict[str, Any], base: str, schema: bytes, series: bool,
                     storage_options: dict[str, Any]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = _get(Location(base).url(part["path"]), part, storage_options)
    table = pq.read_table(pa.BufferReader(data))
    want = pa.ipc.read_schema(pa.py_buffer(schema))
    if not table.schema.equals(want, check_metadata=False):
        table = table.cast(want)
    frame = table.to_pandas()
    if len(frame) != part.get("rows", len(frame)):
        raise EngineError("damaged engine data: a partition's row count differs")
    return frame.iloc[:, 0] if series else frame


def _write_block(block: Any, url: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    out = io.BytesIO()
    np.lib.format.write_array(out, np.ascontiguousarray(block), allow_pickle=False)
    return {**_put(url, out.getvalue(), storage_options), "shape": list(block.shape)}


def _read_block(part: dict[str, Any], url: str, dtype: str, shape: tuple[int, ...],
                storage_options: dict[str, Any]) -> Any:
    import numpy as np

    data = _get(url, part, storage_options)
    block = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    if block.dtype != np.dtype(dtype) or block.shape != shape:
        raise EngineError("damaged engine data: a block's dtype or shape differs")
    return block


def _guarded(fn: Any, *args: Any) -> dict[str, Any]:
    """Run a write task; its failure is returned, not raised, so that every other task
    ends before the save cleans up (a raised error would leave them writing)."""
    try:
        return fn(*args)  # type: ignore[no-any-return]
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _compute(dask: Any, tasks: list[Any]) -> list[dict[str, Any]]:
    """Run the write tasks on the active distributed client (where the data lives), else on
    dask's default scheduler; when one fails, wait for the others to end, then raise."""
    try:
        from distributed import default_client, wait

        client = default_client()  # type: ignore[no-untyped-call]
    except (ImportError, ValueError):
        client = None
    if client is None:
        done = list(dask.compute(*tasks))
    else:
        futures = client.compute(tasks)
        try:
            done = list(client.gather(futures))
        except BaseException:
            wait(futures)  # type: ignore[no-untyped-call]  # let the others end first
            raise
    errors = [r["error"] for r in done if "error" in r]
    if errors:
        raise EngineError(errors[0])
    return done


# ---- the adapter ------------------------------------------------------------------------------

class DaskEngine:
    name = "dask"

    def handles(self, value: object) -> bool:
        return _kind(value) is not None

    def choose(self, value: object, mode: str) -> tuple[str, str]:
        kind = _kind(value)
        if mode == "skip":
            return "skip", "engines='skip'"
        if kind == "array" and getattr(value, "dtype", None) is not None and (
                value.dtype.kind not in _PLAIN_KINDS):  # type: ignore[attr-defined]
            return ("graph", f"an array of dtype {value.dtype} has no data form")  # type: ignore[attr-defined]
        if mode == "write":
            return "write", "engines='write'"
        if mode == "graph":
            return "graph", "engines='graph'"
        if _holds_futures(value):
            return "write", "persisted on a cluster: its futures would not outlive it"
        size = _graph_size(value)
        if size > GRAPH_MAX:
            return "write", f"its graph would embed {size} bytes of data"
        return "graph", f"a lazy graph of {size} bytes (recomputed on load)"

    def token(self, value: Any) -> str | None:
        """What identifies the collection's data: the same token, the same data (its graph's
        keys are derived from it), so a checkpoint can reuse what it wrote before."""
        dask, _, _ = _modules()
        return str(dask.base.tokenize(value))

    def write(self, value: Any, location: Location, prefix: str) -> dict[str, Any]:
        dask, _, _ = _modules()

        kind = _kind(value)
        opts = location.storage_options
        if kind == "array":
            blocks = value.to_delayed()
            tasks, index = [], []
            for pos in _positions(blocks.shape):
                path = f"{prefix}/block-{'.'.join(map(str, pos))}.npy"
                tasks.append(dask.delayed(_guarded)(_write_block, blocks[pos],
                                                    location.url(path), opts))
                index.append((pos, path))
            location.start(prefix)
            done = _compute(dask, tasks)
            location.finish(prefix)
            parts = [{"path": path, "index": list(pos), **r} for (pos, path), r in
                     zip(index, done)]
            return {"engine": self.name, "form": "array", "format": "npy", "prefix": prefix,
                    "dtype": value.dtype.str, "shape": [int(n) for n in value.shape],
                    "chunks": [[int(n) for n in c] for c in value.chunks],
                    "rows": int(value.shape[0]) if value.ndim else 1, "partitions": parts}
        import pyarrow as pa

        meta = value._meta.to_frame() if kind == "series" else value._meta
        try:
            schema = pa.Schema.from_pandas(meta, preserve_index=True)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise EngineError(f"its columns have no Parquet form ({e}): save it with "
                              "engines='graph' or compute it first") from None
        schema_bytes = schema.serialize().to_pybytes()
        paths = [f"{prefix}/part-{i:05d}.parquet" for i in range(value.npartitions)]
        tasks = [dask.delayed(_guarded)(_write_frame_part, part, location.url(path),
                                        schema_bytes, opts)
                 for part, path in zip(value.to_delayed(), paths)]
        location.start(prefix)
        done = _compute(dask, tasks)
        location.finish(prefix)
        parts = [{"path": path, **r} for path, r in zip(paths, done)]
        divisions = list(value.divisions) if value.known_divisions else None
        return {"engine": self.name, "form": kind, "format": "parquet", "prefix": prefix,
                "schema": base64.b64encode(schema_bytes).decode(),
                "columns": [str(c) for c in meta.columns],
                "dtypes": [str(d) for d in meta.dtypes],
                "divisions": _json_divisions(divisions),
                "rows": sum(p["rows"] for p in parts), "partitions": parts}

    def restore(self, record: dict[str, Any], location: Location) -> object:
        try:
            dask, da, dd = _modules()
        except ImportError:
            raise EngineError("this value was saved by Dask: pip install 'dask[distributed]' "
                              "to restore it") from None
        opts = location.storage_options
        parts = record["partitions"]
        if record.get("form") == "array":
            import numpy as np

            dtype = np.dtype(record["dtype"])
            if dtype.kind not in _PLAIN_KINDS:
                raise EngineError("an engine array of a dtype that is not plain data")
            chunks = tuple(tuple(int(n) for n in c) for c in record["chunks"])
            grid: dict[tuple[int, ...], Any] = {}
            for part in parts:
                pos = tuple(int(i) for i in part["index"])
                shape = tuple(chunks[d][i] for d, i in enumerate(pos))
                task = dask.delayed(_read_block)(part, location.url(part["path"]), dtype.str,
                                                 shape, opts)
                grid[pos] = da.from_delayed(task, shape, dtype=dtype)
            return da.block(_nest(grid, tuple(len(c) for c in chunks)))
        import pyarrow as pa

        schema_bytes = base64.b64decode(record["schema"])
        meta = pa.ipc.read_schema(pa.py_buffer(schema_bytes)).empty_table().to_pandas()
        series = record.get("form") == "series"
        if series:
            meta = meta.iloc[:, 0]
        divisions = record.get("divisions")
        divisions = tuple(divisions) if isinstance(divisions, list) and len(divisions) == len(
            parts) + 1 else None
        return dd.from_map(_read_frame_part, parts, args=(location.base, schema_bytes, series,
                                                          opts),
                           meta=meta, divisions=divisions, enforce_metadata=False,
                           label="hibernate-read")


def _positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    import itertools

    return list(itertools.product(*(range(n) for n in shape)))


def _nest(grid: dict[tuple[int, ...], Any], shape: tuple[int, ...]) -> Any:
    def level(prefix: tuple[int, ...]) -> Any:
        d = len(prefix)
        if d == len(shape):
            return grid[prefix]
        return [level((*prefix, i)) for i in range(shape[d])]

    if any(p not in grid for p in _positions(shape)):
        raise EngineError("an engine array's blocks do not cover its shape")
    return level(())


def _json_divisions(divisions: list[Any] | None) -> list[Any] | None:
    if divisions is None:
        return None
    out = []
    for d in divisions:
        if type(d) in (int, float, str) or (hasattr(d, "item") and type(d.item()) in (int,
                                                                                    float)):
            out.append(d.item() if hasattr(d, "item") else d)
        else:
            return None  # timestamps and the like: partitions come back unsorted-known
    return out
