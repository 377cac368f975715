"""The command lines and benchmarks. The package `server` is imported first, before anything
loads numpy: its environment settings (one BLAS thread: server/__init__.py) then hold in every
script too, so that a benchmark's in-process figures are made as the server makes them."""

import server  # noqa: F401
