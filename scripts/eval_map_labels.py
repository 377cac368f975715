"""Whether the map's labels mean something, on a Flickr8k split (server/learn/map_labels.py).

    python -m scripts.eval_map_labels                       # dev (what the labelling was chosen on)
    python -m scripts.eval_map_labels --split test --record test

The split's photos are indexed by their pictures alone (as a library is), the map laid out and
labelled as the server does (`update_gallery_map`, `labelled_regions`); for its 10 most common
caption nouns, the coarse label most of their photos lie nearest, and whether it names the
noun or a close word. A t-SNE layout moves with the smallest change to its input (another
machine's arithmetic is one), and which nouns share a region moves with it: so the same is
measured on layouts of other seeds too, and their mean printed after the table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.artifacts import load_word_space
from server.learn.map_labels import index_pictures, label_table, print_table
from server.serve.gallery import Gallery
from server.serve.gallery_map import compute_layout, labelled_regions, update_gallery_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--layouts", type=int, default=5,
                        help="layouts measured, seeds 0 (the one shipped) to N-1")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "eval_map_labels"), tempfile.TemporaryDirectory() as folder:
        captions = index_pictures(args.split, Path(folder) / "index")
        gallery = Gallery(Path(folder) / "index")
        words = load_word_space()
        made = update_gallery_map(gallery, words=words)  # labelled as the indexer labels them
        regions = made.regions or []
        print(f"Flickr8k {args.split}: {len(made.ids):,} photos on the map")
        print("coarse labels:", ", ".join(" ".join([str(r["label"]), *r["also"]])
                                          for r in regions if r["level"] == 0))
        print_table(table := label_table(captions, made.ids, made.xy, regions, words))
        tables = [table]
        for seed in range(1, args.layouts):
            xy = compute_layout(gallery.vectors, seed=seed)
            tables.append(label_table(captions, made.ids, xy, labelled_regions(
                xy, gallery.vectors, words.words, words.matrix, seed=seed,
                describing=words.describing), words))
        print(f"\nLayouts of seeds 0 to {args.layouts - 1}, of 10 nouns named:")
        for name, what in (("good", "by the labels"), ("first", "by their first words alone"),
                           ("possible", "at most, by any labels of as many words")):
            counts = [getattr(table, name) for table in tables]
            print(f"- {what}: {np.mean(counts):.1f} on average ({', '.join(map(str, counts))})")

if __name__ == "__main__":
    main()
