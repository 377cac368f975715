"""Train the joint model on Flickr8k from the feature cache, choosing the epoch on the dev split.

    python -m scripts.cache_features                 # once: the frozen trunk over every image
    python -m scripts.train --out models             # the shipped model
    python -m scripts.train --loss soft-triplet --out runs/triplet/model

Writes the model folder, its ONNX graph included. Ctrl-C stops after saving a checkpoint;
`--resume` continues from it. Details: server/learn/train.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.common import add_config_args, config_from_args
from server.artifacts import ModelConfig
from server.datasets import SHARED_FLICKR8K, SHARED_FLICKR30K_CAPTIONS
from server.learn.concept_eval import held_out_forms
from server.learn.concepts import ConceptConfig
from server.learn.train import TrainConfig, train_and_save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--out", type=Path, required=True, help="where the model is written")
    parser.add_argument("--run-dir", type=Path, help="checkpoints (default: runs/train-<out path>)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--flickr30k", type=Path, default=SHARED_FLICKR30K_CAPTIONS,
                        help="flickr30k-captions/captions.tsv (with --flickr30k-text)")
    parser.add_argument("--held-out-concepts", action="store_true",
                        help="hold out the concepts of the held-out evaluation (every form of "
                        "server/learn/concept_eval.py's HELD_OUT_CONCEPTS: --held-out)")
    add_config_args(parser, TrainConfig)
    add_config_args(parser, ModelConfig)
    add_config_args(parser, ConceptConfig)
    args = parser.parse_args()
    if args.held_out_concepts:
        args.held_out = held_out_forms()
    train_and_save(args.path, args.out, config_from_args(args, TrainConfig),
                   config_from_args(args, ModelConfig), config_from_args(args, ConceptConfig),
                   args.run_dir, args.resume, args.flickr30k)


if __name__ == "__main__":
    main()
