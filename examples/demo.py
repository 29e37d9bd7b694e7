"""`make demo`: save a realistic session in one process, restore it in a fresh one."""

import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "analysis.hib")
    for step, script in (("1. build and save the session", "demo_session.py"),
                         ("2. restore it in a fresh process", "demo_restore.py")):
        print(f"\n=== {step} ===\n", flush=True)
        subprocess.run([sys.executable, os.path.join(here, script), path], cwd=tmp, check=True)
