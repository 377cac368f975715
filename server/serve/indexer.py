"""Embed a folder (or a caption dataset) of images into a gallery index, incrementally and safely.

The pipeline is reader -> mapper -> writer, and streams: no step holds the gallery in memory.
- reader: `scan_folder` / `dataset_sources` list the images, their captions and their sizes
  and times; `build_index` records them in the run's work (`server.serve.index_work`), on disk;
- mapper: `decoded_batches` decodes the files to embed in worker processes (a bounded window of
  batches ahead) while the ONNX encoder embeds the previous batch in this one; the one decoding
  gives the network's input, the thumbnail and the photo's date (`server.images.read_photo`);
- writer: thumbnails go to `<index>/thumbs/` as they come (server.serve.thumbnails); every
  `chunk_size` results are appended to `<index>/partial/`, so a killed run resumes
  from its last chunk; at the end `GenerationWriter` writes the new generation a block at a
  time, reading kept vectors from the previous one by position, and swaps it in atomically; the
  partial folder goes. A run that finds nothing changed writes no new generation.

A second run embeds only what is new or changed (by size and mtime), keeps the ids of what
stayed, and drops what was deleted. Files that failed to decode are remembered with their reason
and not retried until they change.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import multiprocessing
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
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
from server.images import LAYOUT_DIM, THUMBNAIL_SIDE, BadImage, read_photo
from server.serve.duplicates import APPEARANCE_DIM
from server.serve.encoder import ImageEncoder
from server.serve.gallery import (
    MANIFEST,
    Gallery,
    GalleryError,
    GenerationWriter,
    MatrixRows,
    Skipped,
)
from server.serve.gallery_map import update_gallery_map
from server.serve.index_work import BLOCK, Outcome, Result, Summary, Work, items_of
from server.serve.thumbnails import SETTINGS as THUMBNAILS
from server.serve.thumbnails import remove_thumbnails, thumbnail_key, write_thumbnail
from server.serve.workers import die_with_parent
from server.wordspace import WordSpace

log = logging.getLogger("wordpix.index")
PARTIAL = "partial"
# Files handed to the embedder at once: its decoding pool (or its Ray session) starts once per
# window, and a window's paths are all the indexer holds of the files to embed
WINDOW = 65_536


@dataclass(frozen=True)
class SourceImage:
    path: Path  # absolute
    caption: str | None = None
    # a regular file's size and time, when the reader has them (a folder scan reads them from
    # the directory); else the indexer looks
    size: int | None = None
    mtime_ns: int | None = None


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


def scan_folder(root: Path) -> Iterator[SourceImage]:
    """Every image below root in path order (hidden files and folders left out), with its
    caption if given; yielded as the folders are read, so a library of millions is never listed
    in memory whole.

    Captions come from `captions.tsv` at the root, or a same-named `.txt` beside an image, as
    for training (`read_folder`); images without one are indexed all the same.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}: give a folder of images to index")
    captions: dict[Path, str] | None = None
    if (root / FOLDER_TSV).is_file():
        try:
            captions = {r.image: r.captions[0] for r in read_folder(root) if r.captions}
        except CaptionFormatError as error:
            log.warning("captions ignored: %s", error)
            captions = {}
    return _walk(root, captions)


def _walk(folder: Path, captions: dict[Path, str] | None) -> Iterator[SourceImage]:
    """Depth first, each folder's entries by name: the same order on every run."""
    with os.scandir(folder) as listing:
        entries = sorted((e for e in listing if not e.name.startswith(".")),
                         key=lambda e: e.name)
    names = {entry.name for entry in entries}
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path, captions)
        elif entry.is_dir():
            continue  # a link to a folder is not followed (as os.walk): it could loop
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if captions is not None:
                caption = captions.get(path)
            else:
                has_sidecar = path.with_suffix(".txt").name in names
                caption = next(iter(sidecar_captions(path)), None) if has_sidecar else None
            yield _with_stat(SourceImage(path, caption), entry)


def _with_stat(source: SourceImage, entry: os.DirEntry) -> SourceImage:
    try:
        stat = entry.stat()  # follows a link, as reading the file will
    except OSError:
        return source  # the indexer looks again, and says why it cannot read it
    if not S_ISREG(stat.st_mode):
        return source
    return SourceImage(source.path, source.caption, stat.st_size, stat.st_mtime_ns)


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
    thumbnails: list[bytes]  # of the decoded images (b"" each when none were asked for)
    taken: list[str]  # when each decoded photo was taken
    layouts: np.ndarray  # (len(positions), LAYOUT_DIM): their colour layouts


def decode_batch(paths: list[Path], positions: list[int], size: int, thumbnails: bool = True
                 ) -> DecodedBatch:
    """Decode some images (`read_photo`: the one decoding path); never raises for a bad file."""
    good, photos, failed = [], [], []
    for position, path in zip(positions, paths, strict=True):
        try:
            photos.append(read_photo(path, size, THUMBNAIL_SIDE if thumbnails else 0))
            good.append(position)
        except BadImage as error:
            failed.append((position, str(error)))
    stacked = np.stack([photo.input for photo in photos]) if photos else \
        np.zeros((0, 3, size, size), np.float32)
    layouts = np.stack([photo.layout for photo in photos]) if photos else \
        np.zeros((0, LAYOUT_DIM), np.float32)
    return DecodedBatch(good, stacked, failed, [photo.thumbnail for photo in photos],
                        [photo.taken for photo in photos], layouts)


def decoded_batches(paths: list[Path], size: int, batch_size: int = 16, workers: int = 1,
                    thumbnails: bool = True) -> Iterator[DecodedBatch]:
    """`decode_batch` over `paths` in order, `workers` processes decoding ahead of the caller.

    At most `workers + 1` batches are decoded ahead, so memory stays bounded however slow the
    consumer; workers=0 decodes in this process.
    """
    starts = range(0, len(paths), batch_size)
    if workers <= 0:
        for start in starts:
            batch = range(start, min(start + batch_size, len(paths)))
            yield decode_batch(paths[start : batch.stop], list(batch), size, thumbnails)
        return
    # fork: the workers need nothing but this module, and start at once
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=die_with_parent) as pool:
        pending: deque[Future[DecodedBatch]] = deque()
        for start in starts:
            stop = min(start + batch_size, len(paths))
            pending.append(pool.submit(decode_batch, paths[start:stop],
                                       list(range(start, stop)), size, thumbnails))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class IndexOptions:
    """How to index; the defaults suit a 2-core machine (docs/gallery-index.md)."""

    batch_size: int = 16  # images per ONNX Runtime call
    chunk_size: int = 256  # images per saved chunk: at most this much work is lost on a crash
    workers: int = 1  # image decoding processes
    dtype: str | None = None  # how vectors are stored; None keeps the index's own (else float32)
    rebuild: bool = False  # re-embed everything, keeping ids
    thumbnails: bool = True  # make them (as each image is decoded: server.serve.thumbnails)
    map: bool = True  # lay out the gallery's map after a new generation (gallery_map)
    progress: bool = True  # a progress bar


class Embedded(NamedTuple):
    """One batch's result: the vectors of the images that decoded, the reasons of the others."""

    positions: list[int]  # of the embedded images, in the list of paths given
    vectors: np.ndarray  # (len(positions), dim) unit vectors
    failed: list[tuple[int, str]]  # (position, reason)
    thumbnails: list[bytes] | None = None  # of the embedded images, if made
    taken: list[str] | None = None  # when each was taken, if known
    appearances: np.ndarray | None = None  # for near duplicates, where the model makes them


# Embeds a list of paths batch by batch, in any order, every position once: `embed_here` in
# this process, or `server.serve.ray_indexer.RayEmbedder` on a Ray cluster.
Embedder = Callable[[list[Path], ImageEncoder, IndexOptions], Iterable[Embedded]]


def embed_here(paths: list[Path], encoder: ImageEncoder, options: IndexOptions
               ) -> Iterator[Embedded]:
    """Decode in `options.workers` processes while the encoder embeds in this one."""
    for batch in decoded_batches(paths, encoder.image_size, options.batch_size, options.workers,
                                 options.thumbnails):
        vectors, appearances = encoder.embed_photos(batch.inputs, batch.layouts)
        yield Embedded(batch.positions, vectors, batch.failed, batch.thumbnails, batch.taken,
                       appearances)


@dataclass(frozen=True)
class _Previous:
    """The current generation, as the next one is made from it."""

    items: Path
    embeddings: Path
    next_id: int
    count: int
    manifest: dict
    captioned: bool
    skipped: list[Skipped]
    thumbnails: dict | None  # how its thumbnails were made, if it has them
    appearances: Path | None  # its appearance vectors, if it has them
    appearance: dict | None  # the appearance model they were made with (`settings`)
    redecode: str | None  # why every image must be decoded again (an older format), if so


def work_width(encoder: ImageEncoder) -> int:
    """A row of work: an embedding, then its appearance where the model makes them."""
    return encoder.dim + (APPEARANCE_DIM if encoder.duplicates else 0)


def build_index(sources: Iterable[SourceImage], root: Path, index_dir: Path,
                encoder: ImageEncoder, words: WordSpace | None = None,
                options: IndexOptions = IndexOptions(), embedder: Embedder = embed_here
                ) -> IndexReport:
    """Bring the index in `index_dir` up to date with `sources` (paths under `root`).

    With the model's `words`, captions are embedded too, so a captioned gallery can be searched
    by its pictures and its captions together (the server's --caption-weight). `embedder` does
    the embedding (here, or on a Ray cluster); planning, chunks and assembly are the same.
    """
    started = time.perf_counter()
    index_dir, root = Path(index_dir), Path(root).resolve()
    index_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(index_dir):
        previous = _previous_index(index_dir, encoder.fingerprint, options.rebuild)
        dtype = options.dtype or (previous.manifest.get("dtype", "float32") if previous
                                  else "float32")
        thumbnails = THUMBNAILS if options.thumbnails else None
        appearance = encoder.duplicates.settings if encoder.duplicates else None
        redecode = previous.redecode if previous else None
        if previous and thumbnails and previous.thumbnails != thumbnails:
            redecode = redecode or "it has no thumbnails, or others"
        if previous and appearance and previous.appearance != appearance:
            redecode = redecode or "it has no appearance vectors (near duplicates), or others"
        if redecode and not options.rebuild:
            log.warning("every image is decoded once more (ids are kept): %s", redecode)
        reuse = not options.rebuild and redecode is None
        work = Work(index_dir / PARTIAL, fingerprint=encoder.fingerprint,
                    dim=work_width(encoder), dtype=dtype,
                    previous_items=previous.items if previous else None)
        try:
            unreadable = _record_sources(work, sources, root)
            report = IndexReport(skipped=list(unreadable))
            found = work.summary(reuse, previous.count if previous else -1)
            report.reused, report.removed = found.vectors, found.removed
            if found.todo:
                captioned = _embed(work, root, reuse, found.todo, encoder, options, embedder,
                                   report)
                found = found.after_embedding(report.embedded,
                                              report.skipped[len(unreadable):], captioned)
            report.total = _assemble(work, found, reuse, root, index_dir, encoder, words,
                                     dtype, previous, unreadable, thumbnails, appearance)
            if previous is not None and previous.thumbnails:
                _remove_replaced_thumbnails(work, index_dir, previous.thumbnails,
                                            every=previous.thumbnails != thumbnails)
            if options.map and report.total:
                _update_map(index_dir, words)
        finally:
            work.close()
        shutil.rmtree(index_dir / PARTIAL, ignore_errors=True)
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


def _record_sources(work: Work, sources: Iterable[SourceImage], root: Path) -> list[Skipped]:
    """Put the files present into the work, a block at a time; returns those that cannot be
    read at all (a FIFO named x.jpg would block the decoder forever)."""
    unreadable: list[Skipped] = []

    def records() -> Iterator[tuple[str, int, int, str | None]]:
        for source in sources:
            rel = source.path.relative_to(root).as_posix()
            size, mtime = source.size, source.mtime_ns
            if size is None or mtime is None:
                try:
                    stat = source.path.stat()
                except OSError as error:
                    unreadable.append(Skipped(rel, 0, 0, f"cannot read: {error.strerror}"))
                    continue
                if not S_ISREG(stat.st_mode):
                    unreadable.append(Skipped(rel, 0, 0, "cannot read: not a regular file"))
                    continue
                size, mtime = stat.st_size, stat.st_mtime_ns
            yield rel, size, mtime, source.caption

    stream = records()
    while block := list(islice(stream, BLOCK)):
        work.add_present(block)
    return unreadable


def _previous_index(index_dir: Path, fingerprint: str, rebuild: bool) -> _Previous | None:
    """The current generation, if there is one the run can build on.

    A rebuild re-embeds everything but keeps the ids, so [IMG_12] stays the same picture; an
    index of another format is then started afresh. Files skipped because they could not be
    read are forgotten: they are tried again.
    """
    if not (index_dir / MANIFEST).exists():
        return None
    try:
        gallery = Gallery(index_dir, model_fingerprint=None if rebuild else fingerprint,
                          older_format=True)
    except GalleryError as error:
        if rebuild:
            return None
        raise GalleryError(f"{error}\n(--rebuild re-embeds every image with the loaded model)"
                           ) from None
    generation = gallery.generation
    previous = _Previous(index_dir / f"items-{generation}.sqlite",
                         index_dir / f"embeddings-{generation}.npy",
                         gallery.manifest["next_id"], len(gallery), gallery.manifest,
                         gallery.caption_vectors is not None, gallery.skipped(),
                         gallery.thumbnails, gallery.appearance_file, gallery.appearance,
                         "it was made before thumbnails and dates" if gallery.format == 1
                         else None)
    gallery.close()
    return previous


def _update_map(index_dir: Path, words: WordSpace | None) -> None:
    """The gallery's map, labelled where words are given. The index is written already: a map
    that cannot be made is said, not raised (the server makes it when a page asks)."""
    gallery = Gallery(index_dir)
    try:
        update_gallery_map(gallery, log.info, words)
    except Exception:
        log.warning("the gallery's map was not made (the server makes it when a page asks)",
                    exc_info=True)
    finally:
        gallery.close()


def _embed(work: Work, root: Path, reuse: bool, todo: int, encoder: ImageEncoder,
           options: IndexOptions, embedder: Embedder, report: IndexReport) -> bool:
    """Embed every file the work does not know yet, saving a chunk every chunk_size; returns
    whether some image embedded has a caption."""
    pending = (o for block in work.all_outcomes(reuse, todo_only=True) for o in block)
    chunk: list[Result] = []
    captioned = False
    with tqdm(total=todo, unit="img", desc="embedding", disable=not options.progress) as bar:
        while window := list(islice(pending, WINDOW)):
            paths = [root / o.path for o in window]
            for batch in embedder(paths, encoder, options):
                rows = batch.vectors if batch.appearances is None else \
                    np.hstack([batch.vectors, batch.appearances])
                vectors = dict(zip(batch.positions, rows, strict=True))
                taken = dict(zip(batch.positions, batch.taken or (), strict=False))
                reasons = dict(batch.failed)
                # thumbnails first: a record saved below always has its thumbnail on disk
                for position, data in zip(batch.positions, batch.thumbnails or (),
                                          strict=False):
                    if data:
                        o = window[position]
                        write_thumbnail(work.folder.parent,
                                        thumbnail_key(o.path, o.size, o.mtime_ns), data)
                for position in sorted([*batch.positions, *reasons]):
                    outcome, reason = window[position], reasons.get(position)
                    chunk.append(Result(outcome, vectors.get(position), reason,
                                        taken.get(position)))
                    if reason is None:
                        report.embedded += 1
                        captioned = captioned or bool(outcome.caption)
                    else:
                        report.skipped.append(Skipped(outcome.path, outcome.size,
                                                      outcome.mtime_ns, reason))
                        log.warning("skipped %s: %s", outcome.path, reason)
                if len(chunk) >= options.chunk_size:
                    work.save(chunk)
                    chunk = []
                bar.update(len(batch.positions) + len(batch.failed))
    if chunk:
        work.save(chunk)
    return captioned


def _assemble(work: Work, summary: Summary, reuse: bool, root: Path, index_dir: Path,
              encoder: ImageEncoder, words: WordSpace | None, dtype: str,
              previous: _Previous | None, unreadable: list[Skipped],
              thumbnails: dict | None, appearance: dict | None) -> int:
    """Write the new generation (`summary`: what it holds), a block at a time, unless the
    current one holds exactly that already; returns how many images it holds."""
    skipped = sorted({s.path: s for s in [*unreadable, *summary.skipped]}.values())
    captioned = words is not None and summary.captioned
    if (reuse and previous is not None and summary.same_records and
            previous.manifest.get("dtype") == dtype and previous.manifest["root"] == str(root)
            and previous.captioned == captioned and previous.skipped == skipped
            and previous.thumbnails == thumbnails and previous.appearance == appearance):
        log.info("nothing changed: the index stays as it was")
        return summary.vectors
    kept = []  # the previous generation's matrices, when its vectors are kept
    if previous and reuse:
        kept.append(MatrixRows(previous.embeddings))
        if appearance:  # reuse means the previous ones were made by the same model
            assert previous.appearances is not None
            kept.append(MatrixRows(previous.appearances))
    next_id = previous.next_id if previous else 1  # [IMG_1] is the first image of a fresh one
    with GenerationWriter(index_dir, root=root, model_fingerprint=encoder.fingerprint,
                          count=summary.vectors, dim=encoder.dim, dtype=dtype,
                          captioned=captioned, thumbnails=thumbnails,
                          appearance=appearance) as writer:
        for block in work.all_outcomes(reuse):
            with_vectors = [o for o in block if o.has_vector]
            items, next_id = items_of(with_vectors, writer.written, next_id)
            captions = words.caption_matrix([o.caption or "" for o in with_vectors]) \
                if words is not None and captioned else None
            rows = _vectors_of(with_vectors, work, kept, work.dim)
            writer.add(items, rows[:, :encoder.dim], captions,
                       rows[:, encoder.dim:] if appearance else None)
        writer.commit(skipped, next_id)
    for matrix in kept:
        matrix.close()
    return summary.vectors


def _remove_replaced_thumbnails(work: Work, index_dir: Path, settings: dict, every: bool
                                ) -> None:
    """After a new generation: the thumbnails of the previous one's images that are gone or
    changed (all of them, `every`, when the new one's are made otherwise)."""
    stale = (thumbnail_key(path, size, mtime, settings) for path, size, mtime in
             work.replaced(every))
    removed = remove_thumbnails(index_dir, stale)
    if removed:
        log.info("removed %d thumbnails of images gone or changed", removed)


def _vectors_of(outcomes: list[Outcome], work: Work, kept: list[MatrixRows], dim: int
                ) -> np.ndarray:
    """A block's rows of work (embeddings, then appearances): from this run's (or a killed
    run's) results, or the previous index's matrices side by side."""
    vectors = np.empty((len(outcomes), dim), work.dtype)
    fresh = [i for i, o in enumerate(outcomes) if o.vector_row is not None]
    vectors[fresh] = work.vectors([outcomes[i].vector_row for i in fresh])  # type: ignore[misc]
    old = [i for i, o in enumerate(outcomes) if o.vector_row is None]
    if old:
        assert kept, "a kept vector without a previous index"
        previous_rows = [outcomes[i].previous_row for i in old]
        vectors[old] = np.hstack([matrix.read(previous_rows)  # type: ignore[arg-type]
                                  for matrix in kept])
    return vectors
