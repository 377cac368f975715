"""Run the frozen trunk of the backbone once over Flickr8k and cache what it computes.

    python -m scripts.cache_features                  # Lite1: Flickr8k train (3 views), dev, test
    python -m scripts.cache_features --backbone lite0 --views 5

Details: server/learn/features.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.datasets import SHARED_FLICKR8K
from server.learn.backbone import BACKBONES
from server.learn.features import cache_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--backbone", choices=BACKBONES, default="lite1")
    parser.add_argument("--tail-blocks", type=int, default=1,
                        help="blocks left out of the cache so that they can be fine-tuned")
    parser.add_argument("--views", type=int, default=3, help="views per training image")
    parser.add_argument("--batch-size", type=int, default=40)
    args = parser.parse_args()
    cache_features(args.path, args.backbone, args.tail_blocks, args.views, args.batch_size)


if __name__ == "__main__":
    main()
