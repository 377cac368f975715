"""General English on held-out words: mapped vectors against learned ones, on Flickr8k dev.

    python -m scripts.eval_english --model models
    python -m scripts.eval_english --model models --grid      # the maps compared, to choose one

A fifth of the dev split's query words (found in at least 10 dev images) is held out of the
map; their dev word-query P@5 with mapped vectors is compared with their learned vectors and
with chance. Never run on the test split. Details: server/learn/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scripts.common import add_record_arg, recorded
from server.artifacts import load_word_space
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.english import BlendMap, EnglishWords
from server.learn.evaluate import embed_images, held_out_english_report
from server.serve.encoder import ImageEncoder

GRID = [BlendMap(k, t) for k in (5, 10, 20, 50) for t in (0.02, 0.05, 0.1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--grid", action="store_true", help="compare the blend settings")
    parser.add_argument("--seeds", type=int, default=3, help="held-out draws to average")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "eval_english"):
        records = read_flickr8k(args.path, "dev")
        word_space = load_word_space(args.model)
        english = EnglishWords.load(args.model, word_space)
        if english is None:
            raise SystemExit(f"{args.model} has no English table: python -m scripts.export")
        images = embed_images(ImageEncoder(args.model), [r.image for r in records])
        for how in GRID if args.grid else [english.how]:
            reports = [held_out_english_report(records, word_space, english, images, how, seed=s)
                       for s in range(args.seeds)]
            mean = {key: sum(r[key] for r in reports) / len(reports) for key in reports[0]}
            print(json.dumps({"k": how.k, "temperature": how.temperature,
                              **{key: round(value, 4) for key, value in mean.items()}}))


if __name__ == "__main__":
    main()
