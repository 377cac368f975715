"""The joint model and its trainer on a tiny synthetic set, and the shipped-model loading path."""

import os
import signal
import threading

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from server.artifacts import ModelConfig, load_word_space
from server.images import to_array
from server.learn.export import export_onnx
from server.learn.model import CaptionBatch, JointModel
from server.learn.train import Split, TrainConfig, evaluate, train
from server.serve.encoder import ImageEncoder
from server.wordspace import WordSpace

WORDS = [f"w{i}" for i in range(12)]


def synthetic(n_images=48, views=2, features=32, seed=0):
    """Images whose features are a fixed random function of their captions' words."""
    rng = np.random.default_rng(seed)
    space = WordSpace(WORDS, rng.normal(size=(len(WORDS), 8)).astype(np.float32))
    mixing = rng.normal(size=(len(WORDS), features))
    captions, image_features = [], []
    for _ in range(n_images):
        chosen = rng.choice(len(WORDS), 3, replace=False)
        captions += [" ".join(WORDS[c] for c in chosen)] * 2
        base = mixing[chosen].sum(0)
        image_features.append([base + 0.1 * rng.normal(size=features) for _ in range(views)])
    space.fit_idf(captions)
    split = Split(
        images=torch.tensor(np.array(image_features), dtype=torch.float32),
        captions=CaptionBatch.encode(captions, space, "mean"),
        caption_image=np.repeat(np.arange(n_images), 2),
        first_caption=np.arange(0, 2 * n_images, 2),
        caption_count=np.full(n_images, 2),
    )
    return space, split


def small_config(**overrides):
    return ModelConfig(features=32, hidden=64, joint_dim=8, dropout=0.0, **overrides)


@pytest.mark.parametrize("loss", ["infonce", "soft-triplet"])
def test_training_lowers_the_loss_and_improves_retrieval(loss, tmp_path):
    space, split = synthetic()
    torch.manual_seed(0)
    model = JointModel(space, small_config())
    before = evaluate(model, split)
    config = TrainConfig(loss=loss, epochs=15, batch_size=16, lr=3e-3, word_lr=1e-2)
    state = train(model, split, split, config, tmp_path, resume=False)
    losses = [h["loss"] for h in state["history"]]
    assert losses[-1] < 0.7 * losses[0]
    assert state["best"]["rsum"] > before["rsum"] + 50
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "best.pt").exists()


def test_ctrl_c_stops_after_a_checkpoint_and_resume_finishes(tmp_path):
    space, split = synthetic()
    config = TrainConfig(epochs=100, batch_size=16)
    # a real SIGINT, as a user's Ctrl-C, while training runs
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    state = train(JointModel(space, small_config()), split, split, config, tmp_path,
                  resume=False)
    timer.join()
    assert state["interrupted"] and 0 < state["epoch"] < 100
    stopped_at = state["epoch"]
    again = JointModel(space, small_config())
    state = train(again, split, split, config, tmp_path, resume=True)
    assert not state["interrupted"]
    assert [h["epoch"] for h in state["history"]] == list(range(1, 101))
    assert state["history"][stopped_at - 1]["epoch"] == stopped_at


def test_caption_embedding_is_linear_in_the_joint_word_vectors():
    space, _ = synthetic()
    torch.manual_seed(1)
    model = JointModel(space, small_config())
    torch.nn.init.normal_(model.text_map.weight)
    batch = CaptionBatch.encode(["w1 w2 w2 w9"], space, "mean")
    joint = model.joint_word_vectors()
    expected = (joint[1] + 2 * joint[2] + joint[9]) / 4
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(model.embed_captions(batch).detach().numpy()[0], expected,
                               rtol=1e-5)


def test_saved_model_loads_and_embeds_a_real_image(tmp_path):
    space, _ = synthetic()
    config = ModelConfig(hidden=16, joint_dim=8)
    JointModel(space, config).save(tmp_path, {"note": "test"})
    export_onnx(tmp_path)
    encoder = ImageEncoder(tmp_path)
    vectors = encoder.embed([Image.fromarray(skimage.data.chelsea()),
                             Image.fromarray(skimage.data.coffee())])
    assert vectors.shape == (2, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    words = load_word_space(tmp_path)
    assert words.words == WORDS and words.idf


def test_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"scripts\.train"):
        ImageEncoder(tmp_path)


def test_random_subsets_keep_one_or_two_words_and_stay_normalized():
    space, _ = synthetic()
    batch = CaptionBatch.encode(["w1 w2 w3 w4 w5", "w6", "unknown words only"], space, "mean")
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        short = batch.random_subsets(1.0, 2, generator)
        kept = (short.weights > 0).sum(1)
        assert 1 <= kept[0] <= 2 and kept[1] == 1 and kept[2] == 0
        torch.testing.assert_close(short.weights[:2].sum(1), torch.ones(2))
        # only words of the caption are kept
        assert ((short.weights > 0) <= (batch.weights > 0)).all()
    unchanged = batch.random_subsets(0.0, 2, generator)
    torch.testing.assert_close(unchanged.weights, batch.weights)


def test_finetuning_the_tail_moves_its_weights_but_not_its_batchnorm_statistics(tmp_path):
    from server.learn.backbone import load_backbone, split_backbone

    space, split = synthetic(n_images=8, views=1)
    _, tail = split_backbone(load_backbone("lite0"), 1)
    maps = torch.randn(8, 1, 192, 7, 7, generator=torch.Generator().manual_seed(0))
    split = Split(maps.half(), split.captions, split.caption_image, split.first_caption,
                  split.caption_count)
    config = ModelConfig(backbone="lite0", finetune_tail=True, hidden=16, joint_dim=8)
    model = JointModel(space, config, tail)
    conv = tail.head[0].weight.detach().clone()
    stats = tail.head[1].running_mean.clone()
    train(model, split, split, TrainConfig(epochs=1, batch_size=4, tail_lr=1e-2), tmp_path,
          resume=False)
    assert not torch.equal(conv, tail.head[0].weight)
    torch.testing.assert_close(stats, tail.head[1].running_mean)
    # what ships reproduces the trained network exactly
    model.save(tmp_path / "shipped", {})
    export_onnx(tmp_path / "shipped")
    encoder = ImageEncoder(tmp_path / "shipped")
    trunk, _ = split_backbone(load_backbone("lite0"), 1)
    x = torch.from_numpy(to_array(Image.fromarray(skimage.data.chelsea()), 224)[None])
    model.eval()
    with torch.no_grad():
        expected = model.embed_features(trunk(x)).numpy()
    np.testing.assert_allclose(encoder.embed_inputs(x.numpy()), expected, atol=1e-5)
