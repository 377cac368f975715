"""Whether the map's labels mean something, on a Flickr8k split (server/learn/map_labels.py).

    python -m scripts.eval_map_labels                       # dev (what the labelling was chosen on)
    python -m scripts.eval_map_labels --split test --record test

The split's photos are indexed by their pictures alone (as a library is), the map laid out and
labelled as the server does (`update_gallery_map`, `labelled_regions`); for its 10 most common
caption nouns, the coarse label most of their photos lie nearest, and whether it names the
noun or a close word.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from scripts.common import add_record_arg, recorded
from server.artifacts import load_word_space
from server.learn.map_labels import index_pictures, label_table, print_table
from server.serve.gallery import Gallery
from server.serve.gallery_map import update_gallery_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "eval_map_labels"), tempfile.TemporaryDirectory() as folder:
        captions = index_pictures(args.split, Path(folder) / "index")
        gallery = Gallery(Path(folder) / "index")
        words = load_word_space()
        made = update_gallery_map(gallery, words=words)  # labelled as the indexer labels them
        regions = made.regions or []
        print(f"Flickr8k {args.split}: {len(made.ids):,} photos on the map")
        print("coarse labels:", ", ".join(str(r["label"]) for r in regions if r["level"] == 0))
        print_table(label_table(captions, made.ids, made.xy, regions, words))


if __name__ == "__main__":
    main()
