"""`make pipeline`: run the batch job, start the service on its session, query it, stop it."""

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pipeline.hib")
        print("$ hibernate run --save pipeline.hib batch.py", flush=True)
        subprocess.run([sys.executable, "-m", "hibernate", "run", "--save", path,
                        os.path.join(HERE, "batch.py")], check=True)
        print("$ python serve.py pipeline.hib", flush=True)
        service = subprocess.Popen([sys.executable, os.path.join(HERE, "serve.py"), path],
                                   stdout=subprocess.PIPE, text=True)
        try:
            base = service.stdout.readline().split()[-1]
            print(f"service at {base}")
            for query in ("/predict?temp=25&promo=1", "/store/north", "/info"):
                with urllib.request.urlopen(base + query, timeout=30) as r:
                    print(f"GET {query} -> {json.loads(r.read())}")
        finally:
            service.terminate()
            service.wait(timeout=30)


if __name__ == "__main__":
    main()
