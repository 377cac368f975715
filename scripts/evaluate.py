"""Evaluate a trained model on Flickr8k (standard protocol and word queries) and out of domain.

    python -m scripts.evaluate --model models                 # the shipped model, test split
    python -m scripts.evaluate --model runs/x/model --split dev
    python -m scripts.evaluate --random                       # the chance baseline

Prints each number and a JSON line with all of them, for docs/. Details:
server/learn/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scripts.common import add_record_arg, recorded
from server.datasets import SHARED_FLICKR8K, TUXPAINT_STAMPS, read_flickr8k, read_tuxpaint
from server.learn.evaluate import evaluate_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("flickr8k", "tuxpaint"), default="flickr8k")
    parser.add_argument("--path", type=Path, help="dataset root (default: where it usually is)")
    parser.add_argument("--split", default="test", choices=("dev", "test"),
                        help="Flickr8k split")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="a trained model folder (models/)")
    which.add_argument("--random", action="store_true", help="the chance baseline")
    parser.add_argument("--min-images", type=int, default=10)
    parser.add_argument("--max-pairs", type=int, default=100)
    parser.add_argument("--words", action="store_true",
                        help="also print single-word P@5 by frequency, best and worst words")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "evaluate"):
        if args.dataset == "flickr8k":
            records = read_flickr8k(args.path or SHARED_FLICKR8K, args.split)
        else:
            records = read_tuxpaint(args.path or TUXPAINT_STAMPS)
        report = {"model": "random" if args.random else str(args.model), "dataset": args.dataset,
                  "split": args.split if args.dataset == "flickr8k" else "all"}
        report |= evaluate_model(records, args.model, args.min_images, args.max_pairs, args.words)
        for key, value in report.items():
            print(f"{key:12} {value:.3f}" if isinstance(value, float) else f"{key:12} {value}")
        print(json.dumps(report))


if __name__ == "__main__":
    main()
