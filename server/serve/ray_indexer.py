"""Embed a gallery on a Ray cluster: the indexer's embedding step as a Ray Data pipeline.

    list files (a table of paths) -> read + decode -> embed (an actor pool, one ONNX encoder
    each; Ray Data fuses the two steps) -> back to the driver, which saves the chunks and
    writes the new generation

Only the embedding moves: `build_index` still plans the update (new, changed, deleted files),
saves every chunk to `<index>/partial/` so a killed run resumes, and assembles the generation,
so the index is the one the single-process indexer writes. Decoding is `decode_batch`, the
indexer's own. Ray is the optional extra `scale`; only this module imports it, and only when
called (docs/scale.md).

Every node needs this package and the model folder at the same path (a shared file system, or
the same install on each), and must be able to read the image paths the driver lists.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.images import LAYOUT_DIM
from server.serve.duplicates import APPEARANCE_DIM
from server.serve.encoder import ImageEncoder
from server.serve.gallery import GalleryError
from server.serve.indexer import Embedded, IndexOptions, decode_batch

log = logging.getLogger("wordpix.index")
LOCAL = "local"  # ray.init's address for a Ray started by (and for) this run only
BLOCKS_PER_ACTOR = 8  # input blocks per embedding actor at least: the work balances


@dataclass
class RayEmbedder:
    """An `Embedder` (server.serve.indexer) that runs on Ray; give it to `build_index`.

    `address`: a cluster's ("head:6379", "auto"); None joins RAY_ADDRESS when set, else starts
    a local Ray for this run. `actors`: embedding actors, spread over the nodes; by default one
    per `actor_cpus` of the cluster's CPUs; each decodes and embeds with that many threads.
    `per_node` counts the images each node embedded, by node id.
    """

    address: str | None = None
    actors: int | None = None
    actor_cpus: float = 1.0
    per_node: Counter[str] = field(default_factory=Counter)

    def __call__(self, paths: list[Path], encoder: ImageEncoder, options: IndexOptions
                 ) -> Iterator[Embedded]:
        import ray  # the `scale` extra: the single-process indexer never needs it

        with _connected(ray, self.address):
            dataset = self._pipeline(ray, paths, encoder, options)
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                yield self._result(batch)

    def _pipeline(self, ray: Any, paths: list[Path], encoder: ImageEncoder,
                  options: IndexOptions) -> Any:
        import pyarrow  # comes with ray[data]

        ray.data.DataContext.get_current().enable_progress_bars = False  # the indexer has one
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)
                                           // self.actor_cpus))
        table = pyarrow.table({"position": np.arange(len(paths)),
                               "path": [str(path) for path in paths]})
        # Both steps ask for the same CPUs, so Ray Data fuses them: an actor decodes its batch
        # and embeds it, and decoded pixels (0.7 MB an image) never go through the object
        # store; one thread per reserved CPU keeps Ray's accounting true (docs/scale.md).
        blocks = _blocks(len(paths), actors, options)
        actors = min(actors, blocks)  # an actor without a block would load the model for nothing
        return (ray.data.from_arrow(table, override_num_blocks=blocks)
                .map_batches(_decode, fn_kwargs={"size": encoder.image_size,
                                                 "thumbnails": options.thumbnails},
                             batch_size=options.batch_size, num_cpus=self.actor_cpus)
                .map_batches(_Embed, fn_constructor_kwargs={
                                 "model": str(encoder.directory),
                                 "fingerprint": encoder.fingerprint,
                                 "threads": max(1, round(self.actor_cpus))},
                             batch_size=options.batch_size, num_cpus=self.actor_cpus,
                             # actors are spread over the nodes (Ray Data's default)
                             compute=ray.data.ActorPoolStrategy(size=actors)))

    def _result(self, batch: dict[str, np.ndarray]) -> Embedded:
        good = batch["reason"] == ""
        self.per_node.update(batch["node"][good].tolist())
        return Embedded(batch["position"][good].tolist(), batch["vector"][good],
                        [(int(p), str(r)) for p, r in
                         zip(batch["position"][~good], batch["reason"][~good], strict=True)],
                        [bytes(t) for t in batch["thumbnail"][good]],
                        [str(t) for t in batch["taken"][good]],
                        batch["appearance"][good] if "appearance" in batch else None)


@contextlib.contextmanager
def _connected(ray: Any, address: str | None) -> Iterator[None]:
    """Join the cluster (or start a local Ray) for one run; leave a caller's Ray as it was."""
    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or LOCAL
    # Ray reports usage statistics unless told not to (and its Ray Data collector then asks a
    # Prometheus that is not there): the indexer sends nothing anywhere, unless the user says
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    log.info("Ray: %s, %d CPUs on %d nodes", "a local Ray" if address == LOCAL else address,
             int(ray.cluster_resources().get("CPU", 0)),
             sum(1 for node in ray.nodes() if node["Alive"]))
    try:
        yield
    finally:
        ray.shutdown()


def _blocks(count: int, actors: int, options: IndexOptions) -> int:
    """How many blocks to cut the paths into (one actor task each): several per actor, so the
    work balances, and none longer than a chunk, so results reach the driver, and its saved
    chunks, steadily; but no block shorter than a batch."""
    wanted = max(actors * BLOCKS_PER_ACTOR, math.ceil(count / options.chunk_size))
    return max(1, min(count // options.batch_size, wanted))


def _decode(batch: dict[str, np.ndarray], size: int, thumbnails: bool
            ) -> dict[str, np.ndarray]:
    """Read and decode a batch; a bad file becomes a row with its reason, never an error."""
    paths = [Path(path) for path in batch["path"]]
    # positions in this batch
    decoded = decode_batch(paths, list(range(len(paths))), size, thumbnails)
    inputs = np.zeros((len(paths), 3, size, size), np.float32)
    inputs[decoded.positions] = decoded.inputs
    reasons = np.full(len(paths), "", dtype=object)
    for row, reason in decoded.failed:
        reasons[row] = reason
    made, taken = np.full(len(paths), b"", dtype=object), np.full(len(paths), "", dtype=object)
    made[decoded.positions], taken[decoded.positions] = decoded.thumbnails, decoded.taken
    layouts = np.zeros((len(paths), LAYOUT_DIM), np.float32)
    layouts[decoded.positions] = decoded.layouts
    return {"position": batch["position"], "inputs": inputs, "reason": reasons,
            "thumbnail": made, "taken": taken, "layout": layouts}


class _Embed:
    """One ONNX encoder per actor, loaded once; batches of decoded inputs to unit vectors."""

    def __init__(self, model: str, fingerprint: str, threads: int):
        import ray

        self.encoder = ImageEncoder(Path(model), threads)
        self.node = ray.get_runtime_context().get_node_id()
        if self.encoder.fingerprint != fingerprint:  # vectors of two models are not comparable
            raise GalleryError(f"node {self.node} has another model in {model} "
                               f"({self.encoder.fingerprint}, the driver's is {fingerprint})")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        good = batch["reason"] == ""
        vectors = np.zeros((len(good), self.encoder.dim), np.float32)
        made, appearances = self.encoder.embed_photos(batch["inputs"][good],
                                                      batch["layout"][good])
        vectors[good] = made
        found = {"position": batch["position"], "vector": vectors, "reason": batch["reason"],
                 "node": np.full(len(good), self.node, dtype=object),
                 "thumbnail": batch["thumbnail"], "taken": batch["taken"]}
        if appearances is not None:
            found["appearance"] = np.zeros((len(good), APPEARANCE_DIM), np.float32)
            found["appearance"][good] = appearances
        return found
