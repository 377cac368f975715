"""Choose how near-duplicate photos are found, on planted copies of Flickr8k dev photos.

    python -m scripts.calibrate_duplicates                 # print the table (dev)
    python -m scripts.calibrate_duplicates --write --record dev   # save models/duplicates.npz
    python -m scripts.calibrate_duplicates --split test --record test   # report on test, once

The appearance vector (server.serve.duplicates) projects the classifier's log-probabilities onto
principal components: they are fitted on 2,000 training photos. Then 300 photos of the split get
four planted copies each (`server.samples.plant_copies`: half size, JPEG quality 30, cropped 10%,
brighter), and every photo is indexed as the indexer does (`decode_batch`, `embed_photos`)
beside the split's other photos and 1,500 more training photos that stand for a library's
distinct pictures. Groups are made as the server makes them (`near_pairs`, `groups`). For each
threshold: the share of copies in their original's group, and the share of distinct photos (not
copies) grouped with another distinct photo. The threshold is the lowest at which at most
`--distinct` of them are (dev); Flickr8k holds a few true duplicates of its own, counted here as
mistakes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.samples import COPY_KINDS, plant_copies
from server.serve.duplicates import (
    CLASS_COMPONENTS,
    DUPLICATES_FILE,
    DuplicateModel,
    fit_components,
    groups,
    near_pairs,
)
from server.serve.encoder import ImageEncoder
from server.serve.indexer import decode_batch

FIT_PHOTOS, PLANTED, DISTINCT_TRAIN = 2000, 300, 1500
THRESHOLDS = np.round(np.arange(0.70, 0.99, 0.005), 3)


def embedded(paths: list[Path], encoder: ImageEncoder, batch: int = 32
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The embeddings, the graph's class probabilities and the colour layouts of photos,
    decoded as indexed."""
    embeddings, classes, layouts = [], [], []
    for start in tqdm(range(0, len(paths), batch), unit="batch", desc="embedding"):
        decoded = decode_batch(paths[start : start + batch],
                               list(range(start, min(start + batch, len(paths)))),
                               encoder.image_size, thumbnails=False)
        assert not decoded.failed, decoded.failed
        vectors, probabilities = encoder.run(decoded.inputs, "embedding", "classes")
        embeddings.append(vectors)
        classes.append(probabilities)
        layouts.append(decoded.layouts)
    return np.concatenate(embeddings), np.concatenate(classes), np.concatenate(layouts)


def grouping_table(appearances: np.ndarray, copy_of: np.ndarray, kinds: np.ndarray
                   ) -> list[dict[str, float]]:
    """For each threshold: copies grouped with their original (in all, and by kind) and
    distinct photos grouped with another distinct photo. `copy_of[i]` is the row of row i's
    original, or -1 for a distinct photo."""
    pairs, scores = near_pairs(appearances, float(THRESHOLDS[0]))
    distinct = copy_of < 0
    source = np.where(distinct, np.arange(len(copy_of)), copy_of)  # each row's original
    rows = []
    for threshold in THRESHOLDS:
        group_of = np.arange(len(appearances))
        for number, members in enumerate(groups(len(appearances), pairs[scores >= threshold])):
            group_of[members] = len(appearances) + number
        copies = ~distinct
        with_original = group_of[copies] == group_of[copy_of[copies]]
        originals_per_group: dict[int, set[int]] = {}
        for member in np.flatnonzero(group_of >= len(appearances)):
            originals_per_group.setdefault(int(group_of[member]), set()).add(int(source[member]))
        mixed = {g for g, members in originals_per_group.items() if len(members) > 1}
        wrongly = np.array([int(group_of[member]) in mixed
                            for member in np.flatnonzero(distinct)])
        row = {"threshold": float(threshold), "copies": float(with_original.mean()),
               "distinct": float(wrongly.mean())}
        for number, kind in enumerate(COPY_KINDS):
            row[kind] = float(with_original[kinds[copies] == number].mean())
        rows.append(row)
    return rows


def lowest_within(rows: list[dict[str, float]], distinct: float) -> float:
    """The lowest threshold at which at most `distinct` of the distinct photos are grouped."""
    allowed = [row for row in rows if row["distinct"] <= distinct]
    return allowed[0]["threshold"] if allowed else 1.0


def print_table(rows: list[dict[str, float]], chosen: float | None) -> None:
    print("| threshold | copies with their original | " + " | ".join(COPY_KINDS)
          + " | distinct photos grouped |")
    print("|---" * (3 + len(COPY_KINDS)) + "|")
    for row in rows:
        mark = " (chosen)" if chosen is not None and abs(row["threshold"] - chosen) < 1e-6 \
            else ""
        print(f"| {row['threshold']:.3f}{mark} | {row['copies']:.1%} | "
              + " | ".join(f"{row[kind]:.1%}" for kind in COPY_KINDS)
              + f" | {row['distinct']:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--distinct", type=float, default=0.005,
                        help="distinct photos grouped, at most (dev; default 0.5%%)")
    parser.add_argument("--write", action="store_true",
                        help=f"save the components and threshold ({DUPLICATES_FILE})")
    add_record_arg(parser)
    args = parser.parse_args()
    if args.write and args.split != "dev":
        parser.error("the threshold is chosen on dev only")
    with recorded(args, "calibrate_duplicates"):
        run(args)


def run(args: argparse.Namespace) -> None:
    encoder = ImageEncoder(args.model)
    rng = np.random.default_rng(0)
    train = [r.image for r in read_flickr8k(args.path, "train")]
    picked = rng.permutation(len(train))
    split = [r.image for r in read_flickr8k(args.path, args.split)]
    if args.split == "dev":
        print(f"fitting {CLASS_COMPONENTS} class components on {FIT_PHOTOS:,} training photos")
        _, fit_classes, _ = embedded([train[i] for i in picked[:FIT_PHOTOS]], encoder)
        mean, components = fit_components(fit_classes)
        model = DuplicateModel(mean, components, 0.0, "")
    else:
        model = DuplicateModel.load(args.model)
    originals = [split[i] for i in rng.permutation(len(split))[:PLANTED]]
    others = [p for p in split if p not in set(originals)]
    distinct_train = [train[i] for i in picked[FIT_PHOTOS : FIT_PHOTOS + DISTINCT_TRAIN]]
    with tempfile.TemporaryDirectory() as folder:
        planted = plant_copies(originals, Path(folder))
        paths = [*originals, *others, *distinct_train, *(copy for _, copy in planted)]
        print(f"{len(originals)} {args.split} photos with {len(planted)} planted copies, among "
              f"{len(others) + len(distinct_train):,} other photos")
        embeddings, classes, layouts = embedded(paths, encoder)
    appearances = model.appearance(classes, layouts)
    distinct_count = len(paths) - len(planted)
    copy_of = np.full(len(paths), -1)
    copy_of[distinct_count:] = np.repeat(np.arange(len(originals)), len(COPY_KINDS))
    kinds = np.full(len(paths), -1)
    kinds[distinct_count:] = np.tile(np.arange(len(COPY_KINDS)), len(originals))
    rows = grouping_table(appearances, copy_of, kinds)
    chosen = lowest_within(rows, args.distinct) if args.split == "dev" else model.threshold
    print_table(rows, chosen)
    joint = grouping_table(embeddings, copy_of, kinds)
    print("\nThe joint space's embeddings instead of appearance vectors:")
    print_table([row for row in joint if any(abs(row["threshold"] - shown) < 1e-6 for shown in
                                             (chosen, 0.9, 0.95, 0.97, 0.98, 0.985))], None)
    print(f"threshold {chosen:.3f}" + (" (saved)" if args.write else ""))
    if args.write:
        np.savez(args.model / DUPLICATES_FILE, mean=model.mean, components=model.components,
                 threshold=np.float32(chosen))


if __name__ == "__main__":
    main()
