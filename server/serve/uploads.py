"""Image uploads: decoded and embedded in worker processes, kept per connection by number."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from server.serve.limits import Limits
from server.serve.protocol import MAX_UPLOAD, MAX_UPLOADS, ClientError, Uploaded, elapsed_ms
from server.serve.sessions import Session, unless_gone
from server.serve.workers import embed_upload, start_upload_worker

log = logging.getLogger("wordpix.server")
MAX_UPLOAD_PIXELS = 24_000_000  # a 6000 x 4000 photo (a JPEG decodes at 1/8 scale: ~1 MB)


class Uploads:
    """Decoding and the CNN take tens of milliseconds to seconds: in `upload_slots` worker
    processes at a lower priority (server/serve/workers.py), started when this is made, which
    must be before the event loop has signal handlers and threads that a fork would copy."""

    def __init__(self, model_dir: Path, limits: Limits):
        self.model_dir, self.limits = model_dir, limits
        self.workers = _start_workers(limits.upload_slots, model_dir)

    async def receive(self, data: bytes, session: Session, started: float) -> Uploaded:
        """Embed an uploaded image and keep it as the session's next `[UPLOAD_<n>]`."""
        if len(data) > MAX_UPLOAD:
            raise ClientError("bad_upload", f"the image is too large ({len(data):,} bytes, at "
                                            f"most {MAX_UPLOAD:,})")
        vector, seconds, reason = await unless_gone(session, self._embed(data))
        session.cost += seconds
        if vector is None:
            raise ClientError("bad_upload", f"the upload is not a usable image: {reason}")
        number = next(session.numbers)
        session.uploads[number] = vector
        while len(session.uploads) > MAX_UPLOADS:
            session.uploads.popitem(last=False)
        return Uploaded(type="uploaded", upload=number, term=f"[UPLOAD_{number}]",
                        ms=elapsed_ms(started, time.perf_counter()))

    async def _embed(self, data: bytes) -> tuple[np.ndarray | None, float, str | None]:
        workers = self.workers
        try:
            return await asyncio.get_running_loop().run_in_executor(
                workers, embed_upload, data, MAX_UPLOAD_PIXELS, self.limits.upload_memory)
        except BrokenProcessPool:  # a worker died (a decoder crashed): start afresh
            log.warning("an upload worker died; starting new ones")
            if self.workers is workers:
                workers.shutdown(wait=False, cancel_futures=True)
                self.workers = _start_workers(self.limits.upload_slots, self.model_dir)
            return None, 0.0, "it made the image decoder fail"


def _start_workers(count: int, model_dir: Path) -> ProcessPoolExecutor:
    """Upload worker processes, forked now (a fork copies only this thread, and at start-up no
    other thread holds a lock the child could need)."""
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"),
                               initializer=start_upload_worker, initargs=(model_dir,))
    for _ in range(count):
        pool.submit(int)  # forks the workers at once
    return pool
