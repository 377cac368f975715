"""Index a gallery: embed every image of a folder (or a caption dataset) with the shipped model.

    python -m scripts.index ~/Pictures                     # into runs/index/Pictures
    python -m scripts.index --dataset flickr8k --split test  # into runs/index/flickr8k-test
    python -m scripts.index --dataset tuxpaint --index /elsewhere/tuxpaint
    python -m scripts.index /shared/photos --index /shared/index/photos --ray head:6379

Run it again after adding, changing or deleting images: only those are (re)embedded. Ctrl-C or a
crash loses at most one chunk; the next run resumes. Bad files are skipped and listed.
`--ray` embeds on Ray (`pip install .[scale]`): a local one, or a cluster's (docs/scale.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

from server.artifacts import load_word_space
from server.datasets import SHARED_FLICKR8K, TUXPAINT_STAMPS, open_dataset
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery, GalleryError
from server.serve.indexer import (
    IndexOptions,
    IndexReport,
    build_index,
    dataset_sources,
    embed_here,
    scan_folder,
)
from server.serve.ray_indexer import RayEmbedder
from server.serve.search import make_search
from server.serve.settings import INDEXER, build_parser, default_index


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser(INDEXER, "python -m scripts.index", __doc__)
    args = parser.parse_args(argv)
    if (args.folder is None) == (args.dataset is None):
        parser.error("give either a folder or --dataset")
    if args.index is None:
        args.index = default_index(args.folder, args.dataset, args.split)
    return args


def sources_from(args: argparse.Namespace):
    if args.folder is not None:
        return args.folder.resolve(), scan_folder(args.folder)
    default = {"flickr8k": SHARED_FLICKR8K, "tuxpaint": TUXPAINT_STAMPS}.get(args.dataset)
    path = args.path or default
    if path is None:
        raise ValueError(f"--dataset {args.dataset} needs --path")
    return dataset_sources(open_dataset(args.dataset, path, split=args.split))


def run(argv: list[str] | None = None) -> IndexReport:
    args = parse_args(argv)
    root, sources = sources_from(args)
    options = IndexOptions(batch_size=args.batch_size, chunk_size=args.chunk_size,
                           workers=args.workers, dtype=args.dtype, rebuild=args.rebuild,
                           progress=not args.quiet, thumbnails=not args.no_thumbnails,
                           map=not args.no_map)
    embedder = embed_here if args.ray is None else _ray_embedder(args)
    report = build_index(sources, root, args.index, ImageEncoder(args.model),
                         words=load_word_space(args.model), options=options, embedder=embedder)
    if isinstance(embedder, RayEmbedder):  # the work of each node, for the log
        for node, count in embedder.per_node.most_common():
            logging.info("node %s embedded %d images", node[:12], count)
    if args.search_index:
        _build_search(args.index, args.caption_weight)
    return report


def _build_search(index: Path, caption_weight: float) -> None:
    """What the server's first start would do (`load_app`), done now: same files, same names."""
    gallery = Gallery(index)
    started = time.perf_counter()
    search = make_search(gallery.search_vectors(caption_weight),
                         index_file=gallery.search_cache(caption_weight))
    logging.info("search index: %s, ready in %.0f s", type(search).__name__,
                 time.perf_counter() - started)


def _ray_embedder(args: argparse.Namespace) -> RayEmbedder:
    if importlib.util.find_spec("ray") is None:  # said now, before any planning
        raise ValueError("--ray needs Ray: pip install '.[scale]'")
    return RayEmbedder(address=args.ray or None, actors=args.actors)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = run()
    except (GalleryError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(report.summary())


if __name__ == "__main__":
    main()
