"""What one upload costs its worker, by format: peak memory measured in a fresh process.

Each case is embedded as the server's upload workers embed an upload (`embed_upload`: decoding
and the CNN, with the server's default limits) in a process of its own, which reports how far
its peak resident memory rose, what `decoding_memory` estimated, and whether the image was
accepted. Accepted uploads must stay
within 60 MB with the largest message (10 MiB); the others must be refused before decoding.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from server.images import FORMATS  # its import lets Pillow write HEIF too
from server.serve.limits import DEFAULT_LIMITS
from tests.stress.common import REPO, Target

MAX_UPLOAD_PIXELS = 24_000_000  # the server's (server.serve.app); not imported: it loads ONNX
NETWORK_SIZE = 240
# (format, Pillow mode, megapixels): the largest of each kind the server accepts, and some beyond
CASES = [("JPEG", "RGB", 24.0), ("PNG", "RGB", 9.8), ("PNG", "RGBA", 4.9), ("PNG", "L", 24.0),
         ("PNG", "I;16", 6.5), ("GIF", "P", 6.5), ("WEBP", "RGB", 2.4), ("BMP", "RGB", 2.5),
         ("HEIF", "RGB", 3.9), ("PNG", "RGB", 24.0), ("WEBP", "RGB", 24.0),
         ("PNG", "RGBA", 24.0), ("HEIF", "RGB", 24.0)]
MAX_UPLOAD = 10 * 2**20  # the server's largest upload message


@dataclass(frozen=True)
class DecodeCase:
    name: str
    file_bytes: int
    accepted: bool
    peak_rise: int  # bytes of resident memory the decoding added at its peak
    estimate: int  # what `decoding_memory` said, or 0 where refused before opening
    seconds: float
    reason: str


def make_case(format: str, mode: str, megapixels: float, folder: Path) -> Path:
    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 / width)
    # smooth, so that files stay small (what decoding costs depends on pixels, not on bytes)
    picture = Image.radial_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    if mode not in ("L", "I;16", "1"):
        picture = Image.merge("RGB", [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                      picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)])
    path = folder / f"{format.lower()}-{mode.replace(';', '')}-{megapixels:g}mp.{format.lower()}"
    assert format in FORMATS
    picture.convert(mode).save(path, format, **({"quality": 90} if format in (
        "JPEG", "WEBP", "HEIF") else {}))
    return path


def probe(path: str) -> None:
    """In a fresh process made an upload worker: embed one file as an upload (decoding and the
    CNN, warmed up first on a small image) and print what it cost, as JSON."""
    from server.artifacts import DEFAULT_MODEL_DIR
    from server.images import decoding_memory
    from server.serve.workers import embed_upload, start_upload_worker

    start_upload_worker(DEFAULT_MODEL_DIR)
    warm = io.BytesIO()
    Image.new("RGB", (64, 48)).save(warm, "PNG")
    embed_upload(warm.getvalue(), MAX_UPLOAD_PIXELS, DEFAULT_LIMITS.upload_memory)
    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("RGB", (NETWORK_SIZE, NETWORK_SIZE))
            estimate = decoding_memory(image)
    except Exception:
        estimate = 0
    process = Target(0, os.getpid())  # VmHWM: ru_maxrss would start at the parent's size
    before = process.peak()
    started = time.perf_counter()
    vector, _, reason = embed_upload(data, MAX_UPLOAD_PIXELS, DEFAULT_LIMITS.upload_memory)
    seconds = time.perf_counter() - started
    rise = process.peak() - before
    print(json.dumps({"accepted": vector is not None, "peak_rise": rise, "estimate": estimate,
                      "seconds": seconds, "reason": reason or ""}))


def measure(folder: Path, cases: list[tuple[str, str, float]] = CASES) -> list[DecodeCase]:
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for format, mode, megapixels in cases:
        path = make_case(format, mode, megapixels, folder)
        output = subprocess.run(
            [sys.executable, "-c", f"from tests.stress.decode import probe; "
                                   f"probe({str(path)!r})"],
            cwd=REPO, capture_output=True, text=True, check=True, timeout=300).stdout
        found = json.loads(output.strip().splitlines()[-1])
        results.append(DecodeCase(f"{format} {mode} {megapixels:g} Mpx", path.stat().st_size,
                                  found["accepted"], found["peak_rise"], found["estimate"],
                                  found["seconds"], found["reason"]))
    return results
