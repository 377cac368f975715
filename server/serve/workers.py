"""Worker processes that decode images: the indexer's, and the server's for uploads.

Decoding runs in processes of their own: a decoder that crashes on a hostile file takes down
its worker, not the server or the indexer. The server's upload workers also run the CNN, at a
lower priority, so that no thread of the server's own ever holds its GIL at a low priority (a
low-priority thread descheduled while it holds the GIL stalls the event loop). Workers end with
the process that started them, even when that is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

import numpy as np

from server.images import BadImage, load_input
from server.serve.encoder import ImageEncoder

PR_SET_PDEATHSIG = 1
UPLOAD_NICENESS = 10  # the server's decoders yield the CPU to its event loop (queries)


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent ends, however that ends (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


_encoder: ImageEncoder | None = None  # an upload worker's own CNN


def start_upload_worker(model_dir: Path) -> None:
    """A server's upload worker: ends with the server, runs at a lower priority, loads the CNN
    (one thread), and leaves signals to the server (a fork copied its event loop's wake-up
    descriptor: a signal caught here would otherwise wake the server's loop as if the server
    had caught it)."""
    global _encoder
    die_with_parent()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops this
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.nice(UPLOAD_NICENESS)
    _encoder = ImageEncoder(model_dir, threads=1)


def embed_upload(data: bytes, max_pixels: int, max_memory: int
                 ) -> tuple[np.ndarray | None, float, str | None]:
    """An upload's vector in an upload worker: (vector, CPU seconds taken, None) or (None, CPU
    seconds, why it is not a usable image)."""
    assert _encoder is not None, "not an upload worker"
    started = time.process_time()
    try:
        pixels = load_input(data, _encoder.image_size, max_pixels=max_pixels,
                            max_memory=max_memory)
    except BadImage as error:
        return None, time.process_time() - started, str(error)
    vector = _encoder.embed_inputs(pixels[None])[0]
    return vector, time.process_time() - started, None
