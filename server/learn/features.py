"""Run the frozen trunk of the backbone once over a caption dataset and cache what it computes.

    python -m scripts.cache_features                  # Lite1: Flickr8k train (3 views), dev, test
    python -m scripts.cache_features --backbone lite0 --views 5

Training then never touches a JPEG or the trunk again: on a 2-core CPU the trunk is most of the
cost, so each image goes through it once per view. View 0 is the plain image; the other views
are random crops and flips (seeded per image and view, so a rerun gives the same cache). Only
the training split gets augmented views.

Writes `runs/cache/<backbone>-tail<k>/<split>.npy` (images x views x channels x h x w, float16)
with `<split>.json` (image paths). Safe to interrupt: rows are written in order and the count
done is recorded after every batch, so a rerun resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from server.datasets import read_flickr8k
from server.images import open_image, to_array
from server.learn.backbone import BACKBONES, load_backbone, split_backbone

CACHE_ROOT = Path("runs/cache")


class Views(Dataset):
    """Image i as a stack of `views` network inputs: the plain image, then augmented crops."""

    def __init__(self, paths: list[Path], views: int, size: int, seed: int = 0):
        self.paths, self.views, self.size, self.seed = paths, views, size, seed
        self.augment = transforms.Compose([
            transforms.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)),
            transforms.RandomHorizontalFlip(),
        ])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        # the indexer's and the server's decoding: what is trained on is what is served
        image = open_image(self.paths[index], draft_size=self.size)
        stack = [to_array(image, self.size)]
        torch.manual_seed(self.seed * 1_000_003 + index)  # same crops on every rerun
        stack += [to_array(self.augment(image), self.size) for _ in range(self.views - 1)]
        return torch.from_numpy(np.stack(stack))


def cache_split(paths: list[Path], views: int, out: Path, trunk: torch.nn.Module, size: int,
                batch_size: int) -> None:
    progress_file = out.with_suffix(".progress")
    done = int(progress_file.read_text()) if progress_file.exists() and out.exists() else 0
    with torch.inference_mode():
        probe = trunk(torch.zeros(1, 3, size, size).to(memory_format=torch.channels_last))
    shape = (len(paths), views, *probe.shape[1:])
    if done == 0:
        np.lib.format.open_memmap(out, mode="w+", dtype=np.float16, shape=shape).flush()
    cache = np.load(out, mmap_mode="r+")
    if cache.shape != shape:
        raise ValueError(f"{out} holds {cache.shape}, expected {shape}: delete it to rebuild")
    out.with_suffix(".json").write_text(json.dumps([str(p) for p in paths]))
    if done == len(paths):
        print(f"{out}: complete ({len(paths)} images x {views} views)")
        return
    loader = DataLoader(Views(paths[done:], views, size), batch_size=max(1, batch_size // views),
                        num_workers=1)
    bar = tqdm(total=len(paths), initial=done, desc=out.stem, unit="img")
    with torch.inference_mode():
        for batch in loader:
            flat = batch.flatten(0, 1).to(memory_format=torch.channels_last)
            features = trunk(flat).reshape(len(batch), views, *shape[2:])
            cache[done : done + len(batch)] = features.numpy().astype(np.float16)
            cache.flush()
            done += len(batch)
            progress_file.write_text(str(done))
            bar.update(len(batch))
    bar.close()


def cache_dir(backbone: str, tail_blocks: int) -> Path:
    return CACHE_ROOT / f"{backbone}-tail{tail_blocks}"


def cache_features(root: Path, backbone: str = "lite1", tail_blocks: int = 1, views: int = 3,
                   batch_size: int = 40) -> Path:
    """Cache the trunk's output for Flickr8k's dev, test and train splits; returns the folder."""
    spec = BACKBONES[backbone]
    trunk, _ = split_backbone(load_backbone(backbone), tail_blocks)
    trunk = trunk.to(memory_format=torch.channels_last)
    out_dir = cache_dir(backbone, tail_blocks)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_views in (("dev", 1), ("test", 1), ("train", views)):
        paths = [r.image for r in read_flickr8k(root, split)]
        cache_split(paths, split_views, out_dir / f"{split}.npy", trunk, spec.image_size,
                    batch_size)
    return out_dir
