"""Export a trained model: its concept prior (`concepts.npz`), its image side to ONNX
(`encoder.onnx`), the general-English table (`english-words.txt`, `english-vectors.npy`) and
the words the map's labels are made of (`map-words.txt`).

    python -m scripts.export --model models
    python -m scripts.export --model runs/x/model --concept-weight 1.5 --concept-rank 100

Training does this itself; run it by hand after changing `image_head.pt` or `words.npz`, or to
try other concept settings on a trained model (those given replace the manifest's; the others
stay). Needs WordNet (Debian's wordnet-base), the train extra, and Flickr8k's training captions
(`--path`) for the hubness correction's caption bank.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from server.artifacts import DEFAULT_MODEL_DIR
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.learn.concepts import ConceptConfig
from server.learn.export import (
    concept_config,
    export_bank,
    export_concepts,
    export_english,
    export_onnx,
    record_served_dev_metrics,
)
from server.learn.map_labels import export_map_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K,
                        help="Flickr8k root: its training captions make the caption bank")
    for field in dataclasses.fields(ConceptConfig):
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name,
                            type=type(field.default), help=f"(default: the manifest's, else "
                            f"{field.default})")
    args = parser.parse_args()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ConceptConfig)
             if getattr(args, f.name) is not None}
    print(f"wrote {export_english(args.model):,} English words")
    print(f"wrote {export_map_words(args.model):,} words the map's labels are made of")
    config = dataclasses.replace(concept_config(args.model), **given)
    concepts = export_concepts(args.model, config)
    print(f"wrote the concept prior: {len(concepts.wnids)} classes, {concepts.space.rank} "
          f"concept dimensions, {len(concepts.space.words):,} concept words")
    # the bank is in the search space, which the concept settings shape: made again
    captions = [c for r in read_flickr8k(args.path, "train") for c in r.captions]
    print(f"wrote a caption bank of {export_bank(args.model, captions):,} training captions")
    path = export_onnx(args.model)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    served = record_served_dev_metrics(args.path, args.model)
    print("dev, as served: " + "  ".join(f"{k} {served[k]:.3f}" for k in (
        "t2i_r1", "t2i_r5", "i2t_r1", "words_p5", "pairs_p5")))


if __name__ == "__main__":
    main()
