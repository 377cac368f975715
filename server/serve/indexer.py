"""Embed a folder (or a caption dataset) of images into a gallery index, incrementally and safely.

The pipeline is reader -> mapper -> writer:
- reader: `scan_folder` / `dataset_sources` list the images and their captions;
- mapper: `decoded_batches` decodes them in worker processes (a bounded window of batches
  ahead) while the ONNX encoder embeds the previous batch in this one;
- writer: every `chunk_size` images land in `<index>/partial/` as one file, renamed into place,
  so a killed run resumes from its last chunk; at the end `write_generation` swaps the new index
  in atomically and the partial folder goes. A resumed run first folds the chunks it found into
  one, so chunks do not pile up however often runs are killed; a run that finds nothing changed
  writes no new generation.

A second run embeds only what is new or changed (by size and mtime), keeps the ids of what
stayed, and drops what was deleted. Files that failed to decode are remembered with their reason
and not retried until they change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from server.datasets import (
    FOLDER_TSV,
    IMAGE_SUFFIXES,
    CaptionedImage,
    CaptionFormatError,
    read_folder,
    sidecar_captions,
)
from server.images import BadImage, load_input
from server.serve.encoder import ImageEncoder
from server.serve.gallery import MANIFEST, Gallery, GalleryError, Item, Skipped, write_generation
from server.serve.workers import die_with_parent
from server.wordspace import WordSpace

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


@dataclass(frozen=True)
class DecodedBatch:
    """One batch of images as network inputs, and the ones that could not be decoded."""

    positions: list[int]  # of the decoded images, in the list of paths given
    inputs: np.ndarray  # (len(positions), 3, size, size) float32
    failed: list[tuple[int, str]]  # (position, reason)


def decode_batch(paths: list[Path], positions: list[int], size: int) -> DecodedBatch:
    """Decode some images (`load_input`: the one decoding path); never raises for a bad file."""
    good, inputs, failed = [], [], []
    for position, path in zip(positions, paths, strict=True):
        try:
            inputs.append(load_input(path, size))
            good.append(position)
        except BadImage as error:
            failed.append((position, str(error)))
    stacked = np.stack(inputs) if inputs else np.zeros((0, 3, size, size), np.float32)
    return DecodedBatch(good, stacked, failed)


def decoded_batches(paths: list[Path], size: int, batch_size: int = 16, workers: int = 1
                    ) -> Iterator[DecodedBatch]:
    """`decode_batch` over `paths` in order, `workers` processes decoding ahead of the caller.

    At most `workers + 1` batches are decoded ahead, so memory stays bounded however slow the
    consumer; workers=0 decodes in this process.
    """
    starts = range(0, len(paths), batch_size)
    if workers <= 0:
        for start in starts:
            batch = range(start, min(start + batch_size, len(paths)))
            yield decode_batch(paths[start : batch.stop], list(batch), size)
        return
    # fork: the workers need nothing but this module, and start at once
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=die_with_parent) as pool:
        pending: deque[Future[DecodedBatch]] = deque()
        for start in starts:
            stop = min(start + batch_size, len(paths))
            pending.append(pool.submit(decode_batch, paths[start:stop],
                                       list(range(start, stop)), size))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class _Done:
    """What is known of one file: its vector, or why it was skipped."""

    size: int
    mtime_ns: int
    vector: np.ndarray | None = None
    reason: str | None = None
    id: int | None = None  # the id it had in the previous index


@dataclass(frozen=True)
class IndexOptions:
    """How to index; the defaults suit a 2-core machine (docs/gallery-index.md)."""

    batch_size: int = 16  # images per ONNX Runtime call
    chunk_size: int = 256  # images per saved chunk: at most this much work is lost on a crash
    workers: int = 1  # image decoding processes
    dtype: str | None = None  # how vectors are stored; None keeps the index's own (else float32)
    rebuild: bool = False  # re-embed everything, keeping ids
    progress: bool = True  # a progress bar


class Embedded(NamedTuple):
    """One batch's result: the vectors of the images that decoded, the reasons of the others."""

    positions: list[int]  # of the embedded images, in the list of paths given
    vectors: np.ndarray  # (len(positions), dim) unit vectors
    failed: list[tuple[int, str]]  # (position, reason)


# Embeds a list of paths batch by batch, in any order, every position once: `embed_here` in
# this process, or `server.serve.ray_indexer.RayEmbedder` on a Ray cluster.
Embedder = Callable[[list[Path], ImageEncoder, IndexOptions], Iterable[Embedded]]


def embed_here(paths: list[Path], encoder: ImageEncoder, options: IndexOptions
               ) -> Iterator[Embedded]:
    """Decode in `options.workers` processes while the encoder embeds in this one."""
    for batch in decoded_batches(paths, encoder.image_size, options.batch_size, options.workers):
        yield Embedded(batch.positions, encoder.embed_inputs(batch.inputs), batch.failed)


@dataclass
class _Plan:
    """What an update must do: the files present now, what is already known, what to embed."""

    present: dict[str, tuple[SourceImage, int, int]]  # relative path -> (source, size, mtime)
    known: dict[str, _Done]  # unchanged since the index or the killed run's chunks
    todo: list[str]  # new or changed: to embed
    ids: dict[str, int]  # the ids the previous index gave
    next_id: int
    dtype: str
    unreadable: list[Skipped]  # files that cannot be read at all now
    resumed: dict[str, _Done] = field(default_factory=dict)  # known from a killed run's chunks


def build_index(sources: list[SourceImage], root: Path, index_dir: Path, encoder: ImageEncoder,
                words: WordSpace | None = None, options: IndexOptions = IndexOptions(),
                embedder: Embedder = embed_here) -> IndexReport:
    """Bring the index in `index_dir` up to date with `sources` (paths under `root`).

    With the model's `words`, captions are embedded too, so a captioned gallery can be searched
    by its pictures and its captions together (the server's --caption-weight). `embedder` does
    the embedding (here, or on a Ray cluster); planning, chunks and assembly are the same.
    """
    started = time.perf_counter()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(index_dir):
        plan = _plan(sources, Path(root).resolve(), index_dir, encoder.fingerprint, options)
        report = IndexReport(skipped=list(plan.unreadable))
        report.reused = sum(1 for d in plan.known.values() if d.vector is not None)
        report.removed = sum(1 for rel in plan.ids if rel not in plan.present)
        partial = index_dir / PARTIAL
        if plan.todo:
            partial.mkdir(parents=True, exist_ok=True)
            (partial / "model").write_text(encoder.fingerprint)
            _compact_partial(partial, plan.resumed)
            for rel, result in _embed(plan, encoder, partial, options, embedder):
                plan.known[rel] = result
                if result.vector is None:
                    report.skipped.append(Skipped(rel, result.size, result.mtime_ns,
                                                  result.reason or ""))
                    log.warning("skipped %s: %s", rel, result.reason)
                else:
                    report.embedded += 1
        report.total = _assemble(plan, Path(root).resolve(), index_dir, encoder, words,
                                 options.rebuild)
        shutil.rmtree(partial, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


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


def _plan(sources: list[SourceImage], root: Path, index_dir: Path, fingerprint: str,
          options: IndexOptions) -> _Plan:
    previous, ids, next_id = _previous_index(index_dir, fingerprint, options.rebuild)
    dtype = options.dtype
    if dtype is None:
        manifest = index_dir / MANIFEST
        dtype = json.loads(manifest.read_text()).get("dtype", "float32") if manifest.exists() \
            else "float32"
    done = _read_partial(index_dir / PARTIAL, fingerprint)
    plan = _Plan({}, {}, [], ids, next_id, dtype, [])
    for source in sources:
        rel = source.path.relative_to(root).as_posix()
        try:
            stat = source.path.stat()
        except OSError as error:
            plan.unreadable.append(Skipped(rel, 0, 0, f"cannot read: {error.strerror}"))
            continue
        if not S_ISREG(stat.st_mode):  # a FIFO named x.jpg would block the decoder forever
            plan.unreadable.append(Skipped(rel, 0, 0, "cannot read: not a regular file"))
            continue
        plan.present[rel] = (source, stat.st_size, stat.st_mtime_ns)
        # the killed run's chunk first: it may hold a newer version than the index
        same = [d for d in (done.get(rel), previous.get(rel))
                if d and (d.size, d.mtime_ns) == (stat.st_size, stat.st_mtime_ns)]
        if same:
            plan.known[rel] = same[0]
            if same[0] is done.get(rel):
                plan.resumed[rel] = same[0]
        else:
            plan.todo.append(rel)
    return plan


def _assemble(plan: _Plan, root: Path, index_dir: Path, encoder: ImageEncoder,
              words: WordSpace | None, rebuild: bool) -> int:
    """Write the new generation from the plan's results, unless the current one holds exactly
    that already; returns how many images it holds."""
    items: list[Item] = []
    vectors: list[np.ndarray] = []
    skipped = list(plan.unreadable)
    next_id = plan.next_id
    for rel, (source, _, _) in plan.present.items():
        result = plan.known[rel]
        if result.vector is None:
            skipped.append(Skipped(rel, result.size, result.mtime_ns, result.reason or ""))
            continue
        item_id = plan.ids.get(rel)
        if item_id is None:
            item_id, next_id = next_id, next_id + 1
        items.append(Item(item_id, len(items), rel, result.size, result.mtime_ns, source.caption))
        vectors.append(result.vector)
    skipped = list({s.path: s for s in skipped}.values())
    captioned = words is not None and any(item.caption for item in items)
    if not rebuild and _unchanged(index_dir, items, skipped, next_id, plan.dtype, root,
                                  captioned):
        log.info("nothing changed: the index stays as it was")
        return len(items)
    matrix = np.stack(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    captions = None
    if words is not None and captioned:
        captions = words.caption_matrix([item.caption or "" for item in items])
    write_generation(index_dir, root=root, model_fingerprint=encoder.fingerprint, items=items,
                     vectors=matrix, skipped=skipped, next_id=next_id,
                     caption_vectors=captions, dtype=plan.dtype)
    return len(items)


def _unchanged(index_dir: Path, items: list[Item], skipped: list[Skipped], next_id: int,
               dtype: str, root: Path, captioned: bool) -> bool:
    """Whether the current generation holds exactly these records (and so these vectors: only
    records that changed are re-embedded), so that a run with nothing to do writes nothing."""
    if not (index_dir / MANIFEST).exists():
        return False
    try:
        gallery = Gallery(index_dir)
    except GalleryError:
        return False
    try:
        manifest = gallery.manifest
        return (manifest["next_id"] == next_id and manifest.get("dtype") == dtype and
                manifest["root"] == str(root) and
                (gallery.caption_vectors is not None) == captioned and
                gallery.all_items() == items and gallery.skipped() == sorted(skipped))
    finally:
        gallery.close()


def _previous_index(index_dir: Path, fingerprint: str, rebuild: bool
                    ) -> tuple[dict[str, _Done], dict[str, int], int]:
    """What the current index knows by relative path, the ids it gave, and its next free id.

    A rebuild re-embeds everything but keeps the ids, so [IMG_12] stays the same picture.
    Files skipped because they could not be read are forgotten: they are tried again.
    """
    if not (index_dir / MANIFEST).exists():
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


def _embed(plan: _Plan, encoder: ImageEncoder, partial: Path, options: IndexOptions,
           embedder: Embedder) -> Iterator[tuple[str, _Done]]:
    """Yield (relative path, _Done) for every file to embed, saving a chunk every chunk_size."""
    paths = [plan.present[rel][0].path for rel in plan.todo]
    chunk: list[tuple[str, _Done]] = []
    bar = tqdm(total=len(paths), unit="img", desc="embedding", disable=not options.progress)
    for batch in embedder(paths, encoder, options):
        vectors = dict(zip(batch.positions, batch.vectors, strict=True))
        reasons = dict(batch.failed)
        for position in sorted([*batch.positions, *reasons]):
            rel = plan.todo[position]
            _, size, mtime = plan.present[rel]
            chunk.append((rel, _Done(size, mtime, vectors.get(position), reasons.get(position))))
        if len(chunk) >= options.chunk_size:
            _write_chunk(partial, chunk)
            yield from chunk
            chunk = []
        bar.update(len(batch.positions) + len(batch.failed))
    bar.close()
    if chunk:
        _write_chunk(partial, chunk)
        yield from chunk


def _write_chunk(partial: Path, chunk: list[tuple[str, _Done]]) -> None:
    """One file per chunk, renamed into place: it is there whole or not at all. Numbered after
    the last one there: later chunks are read last, and win."""
    number = max((int(path.name[6:12]) for path in partial.glob("chunk-*[0-9].npz")),
                 default=-1) + 1
    meta = [[rel, d.size, d.mtime_ns, d.reason] for rel, d in chunk]
    vectors = np.stack([d.vector for _, d in chunk if d.vector is not None] or
                       [np.zeros(0, np.float32)])
    tmp = partial / f"chunk-{number:06d}.tmp.npz"
    with open(tmp, "wb") as file:
        np.savez(file, vectors=vectors, meta=np.array(json.dumps(meta)))
        file.flush()
        os.fsync(file.fileno())  # on disk before it counts: a crash then loses at most this one
    os.replace(tmp, partial / f"chunk-{number:06d}.npz")


def _compact_partial(partial: Path, resumed: dict[str, _Done]) -> None:
    """Fold the chunks that killed runs left into one (what this run resumes from), and delete
    the rest, half-written ones too: however often runs are killed, the next starts from one
    chunk. Killed in between, both are there and read alike; killed before, nothing changed."""
    for stale in partial.glob("chunk-*.tmp.npz"):
        stale.unlink(missing_ok=True)
    chunks = list(partial.glob("chunk-*[0-9].npz"))
    if len(chunks) <= 1:
        return
    if resumed:
        _write_chunk(partial, list(resumed.items()))
    for path in chunks:
        path.unlink(missing_ok=True)


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
