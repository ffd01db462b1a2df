"""Runs a load on a thread of a fresh interpreter while its main thread writes numbered lines to stderr.

For tests that a llama.cpp load leaves descriptors 1 and 2 alone: every line must reach stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import os, threading, time
{setup}
done = threading.Event()

def load():
{load}
    done.set()

thread = threading.Thread(target=load)
thread.start()
n = 0
while not done.is_set():
    os.write(2, f"line {{n}}\\n".encode())
    n += 1
    time.sleep(0.001)
thread.join()
os.write(1, f"{{n}}".encode())
"""


def write_during(tmp_path: Path, setup: str, load: str) -> tuple[int, list[str]]:
    """Lines written while ``load`` (an indented function body) ran, and the lines stderr received."""
    script = tmp_path / "writes.py"
    script.write_text(_SCRIPT.format(setup=setup, load=load))
    stdout, stderr = tmp_path / "out.txt", tmp_path / "err.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        subprocess.run([sys.executable, str(script)], stdout=out, stderr=err, check=True, timeout=300)
    return int(stdout.read_text()), stderr.read_text().splitlines()
