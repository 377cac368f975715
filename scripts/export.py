"""Export a trained model's image side to ONNX (`encoder.onnx` in the model folder), and the
general-English table beside it (`english-words.txt`, `english-vectors.npy`).

    python -m scripts.export --model models

Training does this itself; run it by hand after changing `image_head.pt`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from server.artifacts import DEFAULT_MODEL_DIR
from server.learn.export import export_english, export_onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    path = export_onnx(args.model)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    print(f"wrote {export_english(args.model):,} English words beside it")


if __name__ == "__main__":
    main()
