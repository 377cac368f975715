"""Train the word space on any caption dataset.

    python -m scripts.train_text --model glove --out runs/text.npz
    python -m scripts.train_text --dataset instacities --path DIR --model word2vec --out runs/i.npz

Writes the vectors in gensim's native format (tf-idf weights kept) and, beside them, in word2vec
text format (`.txt`) so that any tool of the ecosystem can read them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scripts.common import add_config_args, add_dataset_args, config_from_args, load_records
from server.learn.glove import GloveConfig, train_glove
from server.learn.word2vec import Word2VecConfig, train_word2vec
from server.text import tokenize
from server.wordspace import WordSpace

CONFIGS = {"glove": GloveConfig, "word2vec": Word2VecConfig}


def main() -> None:
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", choices=CONFIGS, default="glove")
    chosen, _ = model.parse_known_args()
    parser = argparse.ArgumentParser(description=__doc__, parents=[model],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_args(parser)
    parser.add_argument("--out", type=Path, required=True, help="output .npz file")
    add_config_args(parser, CONFIGS[chosen.model])
    args = parser.parse_args()
    config = config_from_args(args, CONFIGS[args.model])

    captions = [c for record in load_records(args) for c in record.captions]
    sentences = [tokenize(c) for c in captions]
    print(f"{len(captions):,} captions, {sum(map(len, sentences)):,} tokens")
    start = time.perf_counter()
    if args.model == "glove":
        result = train_glove(sentences, config)
        vectors = result.vectors
        print(f"final cost {result.costs[-1]:.5f} over {result.entries:,} co-occurrences")
    else:
        vectors = train_word2vec(sentences, config)
    print(f"{len(vectors):,} words, {vectors.vector_size} dimensions, "
          f"{time.perf_counter() - start:.1f} s")

    space = WordSpace.from_keyed_vectors(vectors)
    space.fit_idf(captions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    space.save(args.out)
    vectors.save_word2vec_format(str(args.out.with_suffix(".txt")), binary=False)
    print(f"wrote {args.out} and {args.out.with_suffix('.txt')}")


if __name__ == "__main__":
    main()
