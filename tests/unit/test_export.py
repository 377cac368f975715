"""The shipped ONNX graph computes what the PyTorch model it was exported from computes."""

import shutil

import numpy as np
import skimage.data
import torch
from PIL import Image

from server.artifacts import DEFAULT_MODEL_DIR, ENCODER_DATA_FILE, ENCODER_FILE, model_fingerprint
from server.images import to_array
from server.learn.export import export_onnx, image_network
from server.serve.encoder import ImageEncoder
from server.vectors import normalized

PHOTOS = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(),
          skimage.data.rocket()]


def test_shipped_graph_matches_pytorch_on_real_photos():
    encoder = ImageEncoder()
    inputs = np.stack([to_array(Image.fromarray(p), encoder.image_size) for p in PHOTOS])
    with torch.inference_mode():
        outputs = image_network(DEFAULT_MODEL_DIR)(torch.from_numpy(inputs))
    for name, reference in zip(encoder.outputs, outputs, strict=True):
        found = encoder.run(inputs, name)[0]
        expected = reference.numpy() if name == "classes" else normalized(reference.numpy())
        np.testing.assert_allclose(found, expected, atol=2e-5, err_msg=name)
    graph = encoder.embed_inputs(inputs)
    # a batch of one gives the same vectors as a batch of four
    np.testing.assert_allclose(encoder.embed_inputs(inputs[:1]), graph[:1], atol=2e-6)


def test_export_rewrites_the_graph_and_the_fingerprint_follows_it(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    (model / ENCODER_FILE).unlink()
    (model / ENCODER_DATA_FILE).unlink()
    export_onnx(model)
    assert (model / ENCODER_DATA_FILE).read_bytes() == (DEFAULT_MODEL_DIR / ENCODER_DATA_FILE
                                                        ).read_bytes()  # deterministic
    inputs = to_array(Image.fromarray(PHOTOS[0]), ImageEncoder(model).image_size)[None]
    np.testing.assert_allclose(ImageEncoder(model).embed_inputs(inputs),
                               ImageEncoder().embed_inputs(inputs), atol=1e-5)
    fingerprint = model_fingerprint(model)
    (model / ENCODER_FILE).write_bytes((model / ENCODER_FILE).read_bytes() + b"\0")
    assert model_fingerprint(model) != fingerprint
