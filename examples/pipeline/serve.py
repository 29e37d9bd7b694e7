"""The serving side: open the batch session lazily and answer over HTTP.

    python serve.py pipeline.hib [PORT]     # 0 picks a free port; prints the address

GET /predict?temp=25&promo=1  -> {"units": ...}    (the saved model)
GET /store/north              -> {"mean": ..., "count": ...}  (the saved table)
GET /info                     -> which saved variables this process has loaded
Only `model` and `store_stats` are ever read from the file; the rest stays on disk.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import hibernate

snapshot = hibernate.open(sys.argv[1])       # reads the manifest only
model = snapshot["model"]                    # reads model's bytes (and its class)
store_stats = snapshot["store_stats"]        # reads the table's bytes
loaded = ["model", "store_stats"]


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (the http.server name)
        url = urlparse(self.path)
        if url.path == "/predict":
            q = parse_qs(url.query)
            try:
                temp, promo = float(q["temp"][0]), int(q["promo"][0])
            except (KeyError, ValueError):
                return self._send(400, {"error": "need temp and promo"})
            return self._send(200, {"units": model.predict(temp, promo)})
        if url.path.startswith("/store/"):
            name = url.path.removeprefix("/store/")
            if name not in store_stats.index:
                return self._send(404, {"error": f"no store {name!r}"})
            row = store_stats.loc[name]
            return self._send(200, {"mean": float(row["mean"]), "count": int(row["count"])})
        if url.path == "/info":
            return self._send(200, {"saved": sorted(snapshot), "loaded": loaded})
        return self._send(404, {"error": "not found"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0),
                                 Handler)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        snapshot.close()
