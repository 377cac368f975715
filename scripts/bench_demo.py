"""`make demo` from a fresh clone to a served demo, timed, and the environment it made.

    python -m scripts.bench_demo                  # clones this checkout's HEAD into a temp folder
    python -m scripts.bench_demo --gallery flickr8k

Clones the repository's committed HEAD (what a user gets: uncommitted changes are not in it),
runs `make demo` there on a free port and counts the seconds until the server answers /health;
stops it, runs `make demo` again (the second start reuses the environment and the index), and
prints both times with the environment's size (`du`), its packages and whether any of them is
PyTorch. Debian's Tux Paint stamps are installed by `make demo` where apt-get runs as root; when
they are already there, the figure leaves out their download.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.common import add_record_arg, recorded
from tests.stress.common import free_port, wait_until_healthy

REPO = Path(__file__).resolve().parents[1]
TRAINING = ("torch", "torchvision", "timm", "gensim", "scipy")


def time_to_serving(clone: Path, gallery: str, timeout: float) -> float:
    """Seconds from `make demo` to the server's first answer to /health; the server is stopped
    after."""
    log = clone / "demo.log"
    port = free_port()
    started = time.perf_counter()
    with log.open("w") as out:
        demo = subprocess.Popen(["make", "demo", f"GALLERY={gallery}", f"PORT={port}"],
                                cwd=clone, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        try:
            wait_until_healthy(port, demo, timeout)
        except RuntimeError:
            raise SystemExit(f"make demo did not serve:\n{log.read_text()[-3000:]}") from None
        return time.perf_counter() - started
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)


def environment(clone: Path) -> tuple[int, list[str]]:
    """(MB the virtual environment takes, its packages)."""
    size = subprocess.run(["du", "-sm", str(clone / ".venv")], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    listed = subprocess.run([str(clone / ".venv/bin/python"), "-m", "pip", "list",
                             "--format=freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout.split()
    return int(size), [line.split("==")[0].lower() for line in listed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", default="", help="GALLERY for make demo (default: its own)")
    parser.add_argument("--timeout", type=float, default=900)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_demo"), tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "wordpix"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone,
                                capture_output=True, text=True, check=True).stdout.strip()
        first = time_to_serving(clone, args.gallery, args.timeout)
        second = time_to_serving(clone, args.gallery, args.timeout)
        size, packages = environment(clone)
        training = [name for name in TRAINING if name in packages]
        tuxpaint = "installed before" if Path("/usr/share/tuxpaint/stamps").is_dir() else "none"
        print(f"## `make demo` on a fresh clone of {commit} (Tux Paint stamps: {tuxpaint})")
        print("| run | seconds to `serving` |\n|---|---|")
        print(f"| first (environment, install, index) | {first:.1f} |")
        print(f"| second (all reused) | {second:.1f} |")
        print(f"\nenvironment: {size} MB (du -sm .venv), {len(packages)} packages; training "
              f"packages in it: {', '.join(training) or 'none'}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
