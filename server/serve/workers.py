"""Worker processes that decode images: the indexer's and the server's.

Decoding runs in processes of their own: a decoder that crashes on a hostile file takes down
its worker, not the server or the indexer, and a worker never holds the server's GIL. Workers
end with the process that started them, even when that is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

import numpy as np

from server.images import BadImage, load_input

PR_SET_PDEATHSIG = 1
UPLOAD_NICENESS = 10  # the server's decoders yield the CPU to its event loop (queries)


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent ends, however that ends (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_upload_decoder() -> None:
    """A server's upload decoder: ends with the server, runs at a lower priority, and leaves
    signals to the server (a fork copied its event loop's wake-up descriptor: a signal caught
    here would otherwise wake the server's loop as if the server had caught it)."""
    die_with_parent()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops this
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError):
        os.nice(UPLOAD_NICENESS)


def decode_upload(data: bytes, size: int, max_pixels: int, max_memory: int
                  ) -> tuple[np.ndarray | None, float, str | None]:
    """An upload as the network's input: (pixels, CPU seconds taken, None) or (None, CPU
    seconds, why it is not a usable image)."""
    started = time.process_time()
    try:
        pixels = load_input(data, size, max_pixels=max_pixels, max_memory=max_memory)
    except BadImage as error:
        return None, time.process_time() - started, str(error)
    return pixels, time.process_time() - started, None

