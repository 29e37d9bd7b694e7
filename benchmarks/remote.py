"""Remote save and load against a plain s3fs put and get of the same bytes, on a local S3
server (moto, started here on 127.0.0.1; it shares the machine's cores with the client).

    python benchmarks/remote.py [--scale 1] [--runs 3]

The session is benchmarks/session.py's at ``0.2 * scale`` (about SCALE x 200 MB: numpy
arrays, a pandas frame, small objects). Every measured step runs in a fresh process, the
imports (hibernate, numpy, pandas, s3fs) done before the clock starts, the client created
inside it for both: ``hibernate.save`` to s3:// against ``fs.pipe_file`` of the saved
file's bytes, and ``hibernate.load`` against ``fs.cat_file`` of them, both through the same
s3fs options (its defaults: 50 MiB blocks, 10 requests at once). Medians of ``--runs``
alternating runs; prints a markdown table of seconds and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import json, os, sys, time
sys.path.insert(0, {here!r})
import fsspec, hibernate, numpy, pandas, s3fs
step, scale, opts, local = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
url, plain = "s3://bench/session.hib", "s3://bench/plain.bin"
if step == "save":
    from session import build
    ns = {{}}
    build(ns, 0.2 * scale)
    t = time.perf_counter()
    hibernate.save(url, ns, storage_options=opts)
elif step == "put":
    with open(local, "rb") as f:
        data = f.read()
    t = time.perf_counter()
    fs, path = fsspec.core.url_to_fs(plain, **opts)
    fs.pipe_file(path, data)
elif step == "load":
    t = time.perf_counter()
    hibernate.load(url, {{}}, trust=True, storage_options=opts)
else:
    t = time.perf_counter()
    fs, path = fsspec.core.url_to_fs(plain, **opts)
    data = fs.cat_file(path)
print(json.dumps(time.perf_counter() - t))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto's server did not start")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def step(name: str, scale: float, opts: dict[str, object], local: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD.format(here=HERE), name, str(scale),
                          json.dumps(opts), local], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = start_moto(port)
    try:
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1"
                     ).create_bucket(Bucket="bench")
        opts = {"key": "testing", "secret": "testing",
                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "session.hib")
            times: dict[str, list[float]] = {"save": [], "put": [], "load": [], "get": []}
            served: dict[str, list[float]] = {k: [] for k in times}  # the server's CPU
            for i in range(args.runs):
                order = ["save", "put", "load", "get"] if i % 2 == 0 else [
                    "put", "save", "get", "load"]
                if i == 0:  # the plain steps need the saved file's bytes
                    order = ["save", "put", "load", "get"]
                for name in order:
                    before = cpu_seconds(server.pid)
                    times[name].append(step(name, args.scale, opts, local))
                    served[name].append(cpu_seconds(server.pid) - before)
                    if name == "save" and i == 0:
                        import fsspec

                        fs, path = fsspec.core.url_to_fs("s3://bench/session.hib", **opts)
                        fs.get_file(path, local)
            size = os.path.getsize(local)
    finally:
        server.terminate()
        server.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in served.items()}
    print(f"`python benchmarks/remote.py --scale {args.scale:g} --runs {args.runs}`: "
          f"a {size / 1e6:.0f} MB file, moto's server on 127.0.0.1 sharing "
          f"{os.cpu_count()} cores, medians of {args.runs} fresh-process runs\n")
    print("| step | hibernate (s) | plain s3fs (s) | ratio | server CPU (s), hibernate / plain |"
          "\n|---|---|---|---|---|")
    for ours, plain, what in (("save", "put", "save vs `pipe_file`"),
                              ("load", "get", "load vs `cat_file`")):
        print(f"| {what} | {med[ours]:.2f} | {med[plain]:.2f} | "
              f"{med[ours] / med[plain]:.2f}x | {cpu[ours]:.2f} / {cpu[plain]:.2f} |")
    print(f"\nall runs (s): {json.dumps({k: [round(x, 2) for x in v] for k, v in times.items()})}")


if __name__ == "__main__":
    main()
