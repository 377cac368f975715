"""wordpix: words and images in one space, and the server that searches a gallery with them."""

import os

# Before numpy loads OpenBLAS (every server module imports numpy after this package): its idle
# threads then sleep at once instead of spinning after each product. Spinning took a core from
# the event loop and the clients; with this the server spends ~0.5 ms of CPU a query instead of
# ~1 ms, at the same throughput or better (docs/server.md). setdefault: a user's choice wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
# One BLAS thread: a query's products (one row, or a batch, against the gallery and the
# vocabulary) are memory-bound, and a second thread only fights the event loop and the clients
# for the two cores: with it, a query answered in process took 2.6x as long under load
# (`python -m scripts.bench_server`, docs/server.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
