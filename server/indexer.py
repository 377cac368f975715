"""Embed a folder (or a caption dataset) of images into a gallery index, incrementally and safely.

The pipeline is reader -> mapper -> writer:
- reader: `scan_folder` / `dataset_sources` list the images and their captions;
- mapper: `DecodedImages` decodes them in a DataLoader worker while the encoder embeds the
  previous batch in the main process;
- writer: every `chunk_size` images land in `<index>/partial/` as one file, renamed into place,
  so a killed run resumes from its last chunk; at the end `write_generation` swaps the new index
  in atomically and the partial folder goes.

A second run embeds only what is new or changed (by size and mtime), keeps the ids of what
stayed, and drops what was deleted. Files that failed to decode are remembered with their reason
and not retried until they change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from server.backbone import to_input
from server.datasets import (
    FOLDER_TSV,
    IMAGE_SUFFIXES,
    CaptionedImage,
    CaptionFormatError,
    read_folder,
    sidecar_captions,
)
from server.encoder import ImageEncoder
from server.gallery import Gallery, GalleryError, Item, Skipped, write_generation
from server.images import BadImage, open_image
from server.wordspace import TextSpace

log = logging.getLogger("wordpix.index")
PARTIAL = "partial"


@dataclass(frozen=True)
class SourceImage:
    path: Path  # absolute
    caption: str | None = None


@dataclass
class IndexReport:
    embedded: int = 0                   # decoded and embedded by this run
    reused: int = 0                     # unchanged since the last index (or the killed run)
    removed: int = 0                    # gone from the folder since the last index
    skipped: list[Skipped] = field(default_factory=list)  # bad files met by this run
    total: int = 0                      # images in the index now
    seconds: float = 0.0

    def summary(self) -> str:
        reasons = Counter(s.reason.split(":")[0] for s in self.skipped)
        bad = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "none"
        return (f"{self.total} images indexed ({self.embedded} embedded, {self.reused} unchanged,"
                f" {self.removed} removed) in {self.seconds:.1f} s; skipped: {bad}")


def scan_folder(root: Path) -> list[SourceImage]:
    """Every image below root (hidden files and folders left out), with its caption if given.

    Captions come from `captions.tsv` at the root, or a same-named `.txt` beside an image, as
    for training (`read_folder`); images without one are indexed all the same.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}: give a folder of images to index")
    paths = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # os.walk skips the rest
        paths += [Path(folder) / name for name in names
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")]
    if not (root / FOLDER_TSV).is_file():
        return [SourceImage(path, next(iter(sidecar_captions(path)), None))
                for path in sorted(paths)]
    try:
        captions = {r.image: r.captions[0] for r in read_folder(root) if r.captions}
    except CaptionFormatError as error:
        log.warning("captions ignored: %s", error)
        captions = {}
    return [SourceImage(path, captions.get(path)) for path in sorted(paths)]


def dataset_sources(records: Iterable[CaptionedImage]) -> tuple[Path, list[SourceImage]]:
    """A caption dataset's images under their common folder, each with its first caption."""
    sources = [SourceImage(r.image.resolve(), r.captions[0] if r.captions else None)
               for r in records]
    if not sources:
        raise ValueError("the dataset has no images")
    return Path(os.path.commonpath([s.path.parent for s in sources])), sources


class DecodedImages(Dataset):
    """(position, network input or None, reason or None) per image: decoding never raises."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            image = open_image(self.paths[index], draft_size=self.size)
            return index, to_input(image, self.size), None
        except BadImage as error:
            return index, None, str(error)


def _keep_as_list(batch: list) -> list:
    return batch


@dataclass(frozen=True)
class _Done:
    """What is known of one file: its vector, or why it was skipped."""

    size: int
    mtime_ns: int
    vector: np.ndarray | None = None
    reason: str | None = None
    id: int | None = None  # the id it had in the previous index


def build_index(sources: list[SourceImage], root: Path, index_dir: Path, encoder: ImageEncoder,
                *, batch_size: int = 16, chunk_size: int = 256, workers: int = 1,
                dtype: str | None = None, rebuild: bool = False, words: TextSpace | None = None,
                progress: bool = True) -> IndexReport:
    """Bring the index in `index_dir` up to date with `sources` (paths under `root`).

    With the model's `words`, captions are embedded too, so a captioned gallery can be searched
    by its pictures and its captions together (the server's --caption-weight). `dtype` None
    keeps the index's own (float32 for a new one).
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(index_dir):
        return _update(sources, Path(root).resolve(), index_dir, encoder, batch_size, chunk_size,
                       workers, dtype, rebuild, words, progress)


@contextlib.contextmanager
def _exclusive(index_dir: Path):
    """One indexer at a time per index: two would write the same generation and chunks.

    A POSIX record lock (lockf), not flock: forked decoding workers do not inherit it, so it
    goes with the indexer itself, even when that is killed.
    """
    with open(index_dir / "lock", "w") as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GalleryError(f"another indexer is updating {index_dir}: wait for it to "
                               "finish") from None
        yield


def _update(sources: list[SourceImage], root: Path, index_dir: Path, encoder: ImageEncoder,
            batch_size: int, chunk_size: int, workers: int, dtype: str | None, rebuild: bool,
            words: TextSpace | None, progress: bool) -> IndexReport:
    started = time.perf_counter()
    report = IndexReport()
    previous, ids, next_id = _previous_index(index_dir, encoder.fingerprint, rebuild)
    if dtype is None:
        manifest = index_dir / "manifest.json"
        dtype = json.loads(manifest.read_text()).get("dtype", "float32") if manifest.exists() \
            else "float32"
    partial = index_dir / PARTIAL
    done = _read_partial(partial, encoder.fingerprint)

    stats: dict[str, tuple[SourceImage, int, int]] = {}
    todo: list[str] = []
    known: dict[str, _Done] = {}
    for source in sources:
        rel = source.path.relative_to(root).as_posix()
        try:
            stat = source.path.stat()
        except OSError as error:
            report.skipped.append(Skipped(rel, 0, 0, f"cannot read: {error.strerror}"))
            continue
        if not S_ISREG(stat.st_mode):  # a FIFO named x.jpg would block the decoder forever
            report.skipped.append(Skipped(rel, 0, 0, "cannot read: not a regular file"))
            continue
        stats[rel] = (source, stat.st_size, stat.st_mtime_ns)
        # the killed run's chunk first: it may hold a newer version than the index
        same = [d for d in (done.get(rel), previous.get(rel))
                if d and (d.size, d.mtime_ns) == (stat.st_size, stat.st_mtime_ns)]
        if same:
            known[rel] = same[0]
        else:
            todo.append(rel)
    report.reused = sum(1 for d in known.values() if d.vector is not None)
    report.removed = sum(1 for rel, earlier in previous.items()
                         if rel not in stats and earlier.vector is not None)

    if todo:
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "model").write_text(encoder.fingerprint)
        for rel, result in _embed(todo, stats, encoder, partial, batch_size, chunk_size, workers,
                                  progress):
            known[rel] = result
            if result.vector is None:
                report.skipped.append(Skipped(rel, result.size, result.mtime_ns, result.reason))
                log.warning("skipped %s: %s", rel, result.reason)
            else:
                report.embedded += 1

    items, vectors, skipped = [], [], list(report.skipped)
    for rel, (source, _, _) in stats.items():
        result = known[rel]
        if result.vector is None:
            skipped.append(Skipped(rel, result.size, result.mtime_ns, result.reason))
            continue
        item_id = ids.get(rel)
        if item_id is None:
            item_id, next_id = next_id, next_id + 1
        items.append(Item(item_id, len(items), rel, result.size, result.mtime_ns, source.caption))
        vectors.append(result.vector)
    matrix = np.stack(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    captions = None
    if words is not None and any(item.caption for item in items):
        captions = words.caption_matrix([item.caption or "" for item in items])
    write_generation(index_dir, root=root, model_fingerprint=encoder.fingerprint, items=items,
                     vectors=matrix, skipped={s.path: s for s in skipped}.values(),
                     next_id=next_id, caption_vectors=captions, dtype=dtype)
    shutil.rmtree(partial, ignore_errors=True)
    report.total = len(items)
    report.seconds = time.perf_counter() - started
    return report


def _previous_index(index_dir: Path, fingerprint: str, rebuild: bool
                    ) -> tuple[dict[str, _Done], dict[str, int], int]:
    """What the current index knows by relative path, the ids it gave, and its next free id.

    A rebuild re-embeds everything but keeps the ids, so [IMG_12] stays the same picture.
    Files skipped because they could not be read are forgotten: they are tried again.
    """
    if not (index_dir / "manifest.json").exists():
        return {}, {}, 1  # ids start at 1: [IMG_1] is the first image of a fresh gallery
    try:
        gallery = Gallery(index_dir, model_fingerprint=None if rebuild else fingerprint)
    except GalleryError as error:
        if rebuild:  # another format: start afresh
            return {}, {}, 1
        raise GalleryError(f"{error}\n(--rebuild re-embeds every image with the loaded model)"
                           ) from None
    items = gallery.all_items()
    ids = {item.path: item.id for item in items}
    next_id = gallery.manifest["next_id"]
    if rebuild:
        gallery.close()
        return {}, ids, next_id
    vectors = np.asarray(gallery.vectors, np.float32)
    known = {item.path: _Done(item.size, item.mtime_ns, vectors[item.row], id=item.id)
             for item in items}
    known |= {s.path: _Done(s.size, s.mtime_ns, reason=s.reason) for s in gallery.skipped()
              if not s.reason.startswith("cannot read")}
    gallery.close()
    return known, ids, next_id


def _embed(todo: list[str], stats: dict, encoder: ImageEncoder, partial: Path, batch_size: int,
           chunk_size: int, workers: int, progress: bool):
    """Yield (relative path, _Done) for every file in todo, saving a chunk every chunk_size."""
    images = DecodedImages([stats[rel][0].path for rel in todo], encoder.image_size)
    loader = DataLoader(images, batch_size=batch_size, num_workers=workers,
                        collate_fn=_keep_as_list)
    chunk: list[tuple[str, _Done]] = []
    bar = tqdm(total=len(todo), unit="img", desc="embedding", disable=not progress)
    for batch in loader:
        good = [(i, x) for i, x, _ in batch if x is not None]
        vectors = encoder.embed_inputs(torch.stack([x for _, x in good])) if good else []
        by_position = {i: v for (i, _), v in zip(good, vectors, strict=True)}
        for position, _, reason in batch:
            rel = todo[position]
            _, size, mtime = stats[rel]
            chunk.append((rel, _Done(size, mtime, by_position.get(position), reason)))
        if len(chunk) >= chunk_size:
            _write_chunk(partial, chunk)
            yield from chunk
            chunk = []
        bar.update(len(batch))
    bar.close()
    if chunk:
        _write_chunk(partial, chunk)
        yield from chunk


def _write_chunk(partial: Path, chunk: list[tuple[str, _Done]]) -> None:
    """One file per chunk, renamed into place: it is there whole or not at all."""
    number = len(list(partial.glob("chunk-*.npz")))
    meta = [[rel, d.size, d.mtime_ns, d.reason] for rel, d in chunk]
    vectors = np.stack([d.vector for _, d in chunk if d.vector is not None] or
                       [np.zeros(0, np.float32)])
    tmp = partial / f"chunk-{number:06d}.tmp.npz"
    with open(tmp, "wb") as file:
        np.savez(file, vectors=vectors, meta=np.array(json.dumps(meta)))
        file.flush()
        os.fsync(file.fileno())  # on disk before it counts: a crash then loses at most this one
    os.replace(tmp, partial / f"chunk-{number:06d}.npz")


def _read_partial(partial: Path, fingerprint: str) -> dict[str, _Done]:
    """The chunks an interrupted run left, if the same model made them."""
    marker = partial / "model"
    if not marker.exists() or marker.read_text() != fingerprint:
        shutil.rmtree(partial, ignore_errors=True)
        return {}
    done: dict[str, _Done] = {}
    for path in sorted(partial.glob("chunk-*[0-9].npz")):
        try:
            with np.load(path) as chunk:
                vectors = iter(chunk["vectors"])
                entries = [(rel, _Done(size, mtime, None if reason else next(vectors), reason))
                           for rel, size, mtime, reason in json.loads(str(chunk["meta"]))]
        except (OSError, ValueError, KeyError, EOFError, StopIteration):
            log.warning("ignoring a damaged chunk of the interrupted run: %s", path.name)
            continue
        done.update(entries)
    return done
