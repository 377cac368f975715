"""The backbone really is ImageNet-pretrained once its wheel's tensors are mapped into timm."""

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from server.images import flatten_alpha, to_array
from server.learn.backbone import BACKBONES, load_backbone, split_backbone

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("lite0")


def to_input(image: Image.Image, size: int) -> torch.Tensor:
    return torch.from_numpy(to_array(image, size))


def top_class(model, array, size=224):
    with torch.inference_mode():
        return int(model(to_input(Image.fromarray(array), size)[None]).argmax())


def test_lite0_recognises_real_photos(lite0):
    assert top_class(lite0, skimage.data.chelsea()) in CAT_CLASSES
    assert top_class(lite0, skimage.data.coffee()) == ESPRESSO


@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_larger_lites_load_and_recognise_a_cat(name):
    model = load_backbone(name)
    assert top_class(model, skimage.data.chelsea(), BACKBONES[name].image_size) in CAT_CLASSES


def test_trunk_and_tail_compose_to_the_pooled_features(lite0):
    x = to_input(Image.fromarray(skimage.data.chelsea()), 224)[None]
    for tail_blocks in (0, 1, 2):
        trunk, tail = split_backbone(lite0, tail_blocks)
        with torch.inference_mode():
            pooled = tail(trunk(x))
            reference = lite0.forward_head(lite0.forward_features(x), pre_logits=True)
        assert pooled.shape == (1, 1280)
        torch.testing.assert_close(pooled, reference)


def test_input_scaling_and_unknown_backbone():
    x = to_input(Image.new("RGB", (10, 20), (255, 127, 0)), 224)
    assert x.shape == (3, 224, 224)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([128 / 128, 0.0, -127 / 128]))
    with pytest.raises(ValueError, match="lite0"):
        load_backbone("resnet50")


def test_transparency_becomes_white():
    cutout = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert flatten_alpha(cutout).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (4, 4), 0)
    palette.info["transparency"] = 0
    assert flatten_alpha(palette).getpixel((0, 0)) == (255, 255, 255)
    gray = np.asarray(flatten_alpha(Image.new("L", (2, 2), 7)))
    assert gray.shape == (2, 2, 3) and (gray == 7).all()
