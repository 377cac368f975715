"""What the offline scripts share: dataset arguments, dataclass configs as command-line flags,
and `--record`, which writes what a benchmark printed into docs/figures/ for the docs to quote."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from server.artifacts import code_version
from server.datasets import DATASET_KINDS, SHARED_FLICKR8K, CaptionedImage, open_dataset

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


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


def add_record_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", nargs="?", const="", metavar="NAME",
                        help="also write what this prints to docs/figures/<script>[-NAME].md, "
                        "headed by the command, the commit, the date and the machine: the "
                        "figures the docs quote")


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def recorded(args: argparse.Namespace, script: str) -> Iterator[None]:
    """Print as usual; with `--record`, also write what was printed to docs/figures/, once the
    script has finished (a run that fails leaves the figures there as they were)."""
    if args.record is None:
        yield
        return
    name = script + (f"-{args.record}" if args.record else "")
    printed = io.StringIO()
    started = time.strftime("%Y-%m-%d %H:%M")
    real = sys.stdout
    sys.stdout = _Tee(real, printed)
    try:
        yield
    finally:
        sys.stdout = real
    command = " ".join(["python -m", f"scripts.{script}", *_without_record(sys.argv[1:])])
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.md").write_text(
        f"# `{command}`\n\nPrinted at commit {code_version()}, started {started}, on "
        f"{os.cpu_count()} CPU cores ({platform.machine()}, Python "
        f"{platform.python_version()}). Written by `--record`: do not edit by hand.\n\n"
        f"```\n{printed.getvalue().rstrip()}\n```\n")
    print(f"(recorded in {os.path.relpath(FIGURES / f'{name}.md')})", file=sys.stderr)


def _without_record(argv: list[str]) -> list[str]:
    """The command line less `--record` and its name: what reproduces the figures."""
    kept, skip = [], False
    for arg in argv:
        if skip and not arg.startswith("-"):
            skip = False
            continue
        skip = arg == "--record"
        if not skip and not arg.startswith("--record="):
            kept.append(arg)
    return kept
