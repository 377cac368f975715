"""What the offline scripts share: dataset arguments and dataclass configs as command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from server.datasets import DATASET_KINDS, SHARED_FLICKR8K, CaptionedImage, open_dataset


def add_dataset_args(parser: argparse.ArgumentParser, default_splits: str = "train,dev") -> None:
    parser.add_argument("--dataset", choices=DATASET_KINDS, default="flickr8k")
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K,
                        help="dataset root (for coco: the captions JSON)")
    parser.add_argument("--split", default=default_splits,
                        help="flickr8k splits, comma separated (never tune on test)")


def load_records(args: argparse.Namespace) -> list[CaptionedImage]:
    if args.dataset != "flickr8k":
        return open_dataset(args.dataset, args.path)
    records: list[CaptionedImage] = []
    for split in args.split.split(","):
        records += open_dataset("flickr8k", args.path, split.strip())
    return records


def add_config_args(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One --flag per field of a config dataclass, typed and defaulted from the dataclass."""
    for field in dataclasses.fields(config_type):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(flag, type=kind, default=field.default,
                                help=f"(default {field.default})")


def config_from_args(args: argparse.Namespace, config_type: type):
    return config_type(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_type)})
