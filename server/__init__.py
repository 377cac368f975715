"""wordpix: words and images in one space, and the server that searches a gallery with them."""

import os

# Before numpy loads OpenBLAS (every server module imports numpy after this package): its idle
# threads then sleep at once instead of spinning after each product. Spinning took a core from
# the event loop and the clients; with this the server spends ~0.5 ms of CPU a query instead of
# ~1 ms, at the same throughput or better (docs/server.md). setdefault: a user's choice wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
