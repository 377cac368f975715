"""A gallery index on disk: embeddings, image records and the model that made them.

An index is a folder:

    manifest.json          what the index is: model fingerprint, dim, dtype, image root, count,
                           and which generation of the two files below is current
    embeddings-<g>.npy     (count, dim) unit vectors, float32 or float16, memory-mapped on open
    captions-<g>.npy       (count, dim) the captions' vectors in the same space (zero where an
                           image has none); only when some image has a caption
    items-<g>.sqlite       one row per image (stable id, row in the matrix, path relative to the
                           root, size and mtime for incremental updates, caption, when it was
                           taken) and the files that were skipped, with the reason
    thumbs/                the images' thumbnails, by key (server.serve.thumbnails), when the
                           manifest's `thumbnails` says how they were made

A new generation is written beside the current one and becomes current when manifest.json is
replaced, which is atomic: a reader (or a crash) sees the old index or the new one, never half.
Opening is O(1) in the gallery's size: the matrix is mapped, records are read by row on demand.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from server.serve.duplicates import APPEARANCE_DIM
from server.serve.filters import MAX_FOLDER_CHARS, RowsWithin
from server.serve.thumbnails import thumbnail_key
from server.vectors import normalized

MANIFEST = "manifest.json"
# 2: thumbnails and dates. An index of format 1 is upgraded by the indexer (ids kept, every
# image decoded once more); the server refuses it with the command that does so.
FORMAT_VERSION = 2
# folders the manifest names for the page's folder filter, and the characters of their paths at
# most: every connection's hello carries them (1,000 paths of 50 characters: about 60 KB of JSON)
FOLDERS_LISTED = 1000
FOLDER_CHARS_LISTED = 50_000
RECORD_CACHE = 200_000  # records kept in memory by Gallery.items (about 60 MB at most)
SQL_VARIABLES = 999     # the smallest limit on ?-parameters among sqlite builds
# Past this many images, a blend of pictures and captions is a file (blend-<g>-c<w>.npy) read
# through a memory map rather than a matrix in memory (1.2 GB at 1M)
BLEND_IN_MEMORY_UP_TO = 1_000_000
BLEND_CHUNK = 100_000
# the files of one generation; faiss-<g>*.index is a search index the server may cache there,
# blend-<g>*.npy the blended vectors of a large captioned gallery
GENERATION_FILES = (("embeddings", "npy"), ("captions", "npy"), ("appearance", "npy"),
                    ("items", "sqlite"), ("faiss", "index"), ("blend", "npy"))


class GalleryError(Exception):
    """Not a usable index (missing, corrupt, or by another model); the message says what to do."""


class Item(NamedTuple):
    """One indexed image. `id` never changes while the file stays; `row` is its matrix row.

    A NamedTuple rather than a dataclass: the server builds thousands a second from sqlite rows.
    """

    id: int
    row: int
    path: str  # relative to the gallery root
    size: int
    mtime_ns: int
    caption: str | None = None
    taken: str | None = None  # 'YYYY-MM-DDTHH:MM:SS': EXIF DateTimeOriginal, else the mtime


class Skipped(NamedTuple):
    path: str
    size: int
    mtime_ns: int
    reason: str


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: a gallery may be opened in one thread and used in another
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


class Gallery:
    """An opened index: `vectors` (memory-mapped) plus record lookups by row or id."""

    def __init__(self, directory: Path, model_fingerprint: str | None = None,
                 older_format: bool = False):
        """`older_format`: also open an index of an earlier format (for the indexer to
        upgrade): its records have no date."""
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        if not manifest_path.exists():
            raise GalleryError(f"no gallery index in {self.directory}: build one with "
                              f"`python -m scripts.index IMAGE_FOLDER --index {self.directory}`")
        self.manifest = json.loads(manifest_path.read_text())
        self.format = self.manifest.get("format")
        if self.format == 1 and not older_format:
            raise GalleryError(
                f"{self.directory} was made before thumbnails and dates: update it with "
                f"`python -m scripts.index {self.manifest['root']} --index {self.directory}` "
                "(ids are kept; every image is decoded once more)")
        if self.format not in (1, FORMAT_VERSION):
            raise GalleryError(f"{self.directory} was written by another version of this tool: "
                              "rebuild it with `python -m scripts.index ... --rebuild`")
        made_by = self.manifest["model"]
        if model_fingerprint is not None and made_by != model_fingerprint:
            raise GalleryError(
                f"the index in {self.directory} was made by model {made_by}, but the loaded "
                f"model is {model_fingerprint}: its vectors are not comparable. Re-index with "
                f"`python -m scripts.index {self.manifest['root']} --index {self.directory} "
                "--rebuild`")
        generation = self.manifest["generation"]
        self.root = Path(self.manifest["root"])
        self.vectors = np.load(self.directory / f"embeddings-{generation}.npy", mmap_mode="r")
        captions = self.directory / f"captions-{generation}.npy"
        self.caption_vectors = np.load(captions, mmap_mode="r") if captions.exists() else None
        # appearance vectors (near duplicates: server.serve.duplicates), where they were made
        self.appearance: dict | None = self.manifest.get("appearance")  # model, threshold
        self.appearance_file = self.directory / f"appearance-{generation}.npy" \
            if self.appearance else None
        self._db = _connect(self.directory / f"items-{generation}.sqlite")
        self.generation = generation
        self.thumbnails: dict | None = self.manifest.get("thumbnails")  # their settings
        # [path, photos] of its fullest folders (None: an index written before they were kept)
        self.folders: list[list] | None = self.manifest.get("folders")
        self._taken = "taken" if self.format == FORMAT_VERSION else "NULL"
        self._columns = f"id, row, path, size, mtime_ns, caption, {self._taken}"
        self._records: dict[int, Item] = {}
        self.rows_within = RowsWithin(self._db)  # the rows a query's filter keeps

    def __len__(self) -> int:
        return len(self.vectors)

    def search_vectors(self, caption_weight: float = 0.0,
                       in_memory_up_to: int = BLEND_IN_MEMORY_UP_TO) -> np.ndarray:
        """What queries are ranked against: the image embeddings, or, for images with a
        caption, normalize(image + caption_weight * caption), both unit vectors.

        Pictures carry what the CNN learned; captions say what a picture is even where the CNN
        is weak (clip art is far from the photos it was trained on: docs/demo.md). A blend
        of more than `in_memory_up_to` images is written once beside the generation and
        memory-mapped, like the embeddings.
        """
        if not caption_weight or self.caption_vectors is None:
            return self.vectors
        if len(self) <= in_memory_up_to:
            return _blend(self.vectors, self.caption_vectors, caption_weight)
        path = self.directory / f"blend-{self.generation}{self._tag(caption_weight)}.npy"
        if not path.exists():
            tmp = path.with_suffix(".tmp.npy")
            blend = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.vectors.dtype,
                                              shape=self.vectors.shape)
            for start in range(0, len(self), BLEND_CHUNK):
                rows = slice(start, start + BLEND_CHUNK)
                blend[rows] = _blend(self.vectors[rows], self.caption_vectors[rows],
                                     caption_weight)
            blend.flush()
            del blend
            tmp.replace(path)
        return np.load(path, mmap_mode="r")

    def appearance_vectors(self) -> np.ndarray | None:
        """The images' appearance vectors (memory-mapped), if the index has them."""
        if self.appearance_file is None:
            return None
        return np.load(self.appearance_file, mmap_mode="r")

    def search_cache(self, caption_weight: float = 0.0) -> Path:
        """Where a faiss index of `search_vectors(caption_weight)` may be kept."""
        return self.directory / f"faiss-{self.generation}{self._tag(caption_weight)}.index"

    def _tag(self, caption_weight: float) -> str:
        return f"-c{caption_weight:g}" if caption_weight and self.caption_vectors is not None \
            else ""

    def items(self, rows: Sequence[int]) -> list[Item]:
        """Records for matrix rows, in the order asked.

        Records read once are kept (up to RECORD_CACHE of them): a generation never changes,
        and the server asks for the same popular images again and again.
        """
        rows = [int(r) for r in rows]
        if len(self._records) + len(rows) > RECORD_CACHE:
            self._records.clear()
        missing = sorted({r for r in rows if r not in self._records})
        for start in range(0, len(missing), SQL_VARIABLES):  # sqlite caps ?-parameters
            part = missing[start : start + SQL_VARIABLES]
            for item in self._select(f"WHERE row IN ({','.join('?' * len(part))})", part):
                self._records[item.row] = item
        return [self._records[r] for r in rows]

    def by_id(self, image_id: int) -> Item | None:
        found = self._select("WHERE id = ?", [image_id])
        return found[0] if found else None

    def page(self, after: int, count: int) -> list[Item]:
        """`count` images in id order from the first id above `after`: for a fresh index,
        [IMG_n] is the n-th of page(0, ...). By key, so any page costs the same (the primary
        key's b-tree), where an OFFSET would read and skip every row before it."""
        return self._select("WHERE id > ? ORDER BY id LIMIT ?", [after, count])

    def all_items(self) -> list[Item]:
        return self._select("ORDER BY row", [])

    def skipped(self) -> list[Skipped]:
        return [Skipped(*row) for row in self._db.execute(
            "SELECT path, size, mtime_ns, reason FROM skipped ORDER BY path")]

    def taken_range(self) -> list[str | None]:
        """The first and last day a photo of the gallery was taken ([None, None]: none known)."""
        first, last = self._db.execute(f"SELECT MIN({self._taken}), MAX({self._taken}) "
                                       "FROM items").fetchone()
        return [first and first[:10], last and last[:10]]

    def thumbnail_key(self, item: Item) -> str | None:
        """The key of `item`'s thumbnail, if the index has thumbnails."""
        if self.thumbnails is None:
            return None
        return thumbnail_key(item.path, item.size, item.mtime_ns, self.thumbnails)

    def _select(self, where: str, args: list) -> list[Item]:
        query = f"SELECT {self._columns} FROM items {where}"
        return [Item(*row) for row in self._db.execute(query, args)]

    def close(self) -> None:
        self._db.close()


def _blend(vectors: np.ndarray, captions: np.ndarray, caption_weight: float) -> np.ndarray:
    return normalized(vectors + caption_weight * normalized(captions))


def write_generation(directory: Path, *, root: Path, model_fingerprint: str, items: list[Item],
                     vectors: np.ndarray, skipped: Iterable[Skipped], next_id: int,
                     caption_vectors: np.ndarray | None = None, dtype: str = "float32",
                     thumbnails: dict | None = None, appearances: np.ndarray | None = None,
                     appearance: dict | None = None) -> None:
    """Write a new generation held in memory and make it current (`GenerationWriter` at once)."""
    with GenerationWriter(directory, root=root, model_fingerprint=model_fingerprint,
                          count=len(items), dim=int(vectors.shape[1]), dtype=dtype,
                          captioned=caption_vectors is not None,
                          thumbnails=thumbnails, appearance=appearance) as writer:
        writer.add(items, vectors, caption_vectors, appearances)
        writer.commit(skipped, next_id)


class GenerationWriter:
    """Writes the next generation block by block, so that no matrix of the gallery is ever in
    memory whole (10M images of 400 float32 dimensions would be 16 GB), then makes it current.

    The matrices are written with plain writes, not through a memory map: pages written through
    a map count in the process's resident memory until the kernel writes them back. Leaving the
    `with` block without `commit` (an error, a crash) leaves the current generation as it was;
    the next writer replaces the half-written files.
    """

    def __init__(self, directory: Path, *, root: Path, model_fingerprint: str, count: int,
                 dim: int, dtype: str, captioned: bool, thumbnails: dict | None = None,
                 appearance: dict | None = None):
        """`thumbnails`: the settings its images' thumbnails were made with, if they were;
        `appearance`: the appearance model's settings (`DuplicateModel.settings`), if the rows
        have appearances."""
        directory.mkdir(parents=True, exist_ok=True)
        old = _read_manifest(directory)
        self.directory = directory
        self.generation = (old["generation"] + 1) if old else 1
        self.count, self.dim, self.dtype = count, dim, np.dtype(dtype)
        self.written = 0
        self.manifest = {"format": FORMAT_VERSION, "generation": self.generation,
                         "model": model_fingerprint, "root": str(root), "count": count,
                         "dim": dim, "dtype": str(self.dtype), "thumbnails": thumbnails,
                         "appearance": appearance}
        widths = {"embeddings": dim, "captions": dim if captioned else 0,
                  "appearance": APPEARANCE_DIM if appearance else 0}
        self._paths = {kind: directory / f"{kind}-{self.generation}.npy"
                       for kind, width in widths.items() if width}
        self._matrices = {kind: self._open_matrix(path, widths[kind])
                          for kind, path in self._paths.items()}
        self._items_path = directory / f"items-{self.generation}.sqlite"
        self._items_path.unlink(missing_ok=True)  # a leftover of an interrupted run
        self._db = sqlite3.connect(self._items_path)
        self._db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, row INTEGER UNIQUE NOT "
                         "NULL, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER, "
                         "caption TEXT, taken TEXT)")
        self._db.execute("CREATE TABLE skipped (path TEXT PRIMARY KEY, size INTEGER, "
                         "mtime_ns INTEGER, reason TEXT)")

    def _open_matrix(self, path: Path, width: int) -> BinaryIO:
        file = open(path, "wb")  # noqa: SIM115 (closed by close())
        np.lib.format.write_array_header_1_0(file, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.count, width)})
        return file

    def add(self, items: Sequence[Item], vectors: np.ndarray,
            captions: np.ndarray | None = None, appearances: np.ndarray | None = None) -> None:
        """The next rows, in row order: `vectors[i]` (and `captions[i]`, `appearances[i]`)
        belong to `items[i]`."""
        given = {"embeddings": vectors, "captions": captions, "appearance": appearances}
        if any((given[kind] is None) == (kind in self._matrices) for kind in given) or any(
                len(values) != len(items) for values in given.values() if values is not None):
            raise ValueError("one vector (and one caption vector, one appearance, if the "
                             "generation has them) per item")
        for kind, file in self._matrices.items():
            file.write(np.ascontiguousarray(given[kind], dtype=self.dtype).tobytes())
        self._db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)", items)
        self.written += len(items)

    def commit(self, skipped: Iterable[Skipped], next_id: int) -> None:
        """Record the skipped files and the next free id, make everything durable, swap the
        manifest, tidy up."""
        if self.written != self.count:
            raise ValueError(f"{self.written} rows written of the {self.count} announced")
        self._db.executemany("INSERT INTO skipped VALUES (?, ?, ?, ?)",
                             [(s.path, s.size, s.mtime_ns, s.reason) for s in skipped])
        # the date filter's range scans (the folder filter's use the path's own index)
        self._db.execute("CREATE INDEX items_taken ON items (taken)")
        self._db.commit()
        self.manifest["folders"] = self._folders()
        self.close()
        for path in [*self._paths.values(), self._items_path]:
            _fsync(path)
        tmp = self.directory / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest | {"next_id": next_id}, indent=1))
        _fsync(tmp)
        os.replace(tmp, self.directory / MANIFEST)
        _remove_stale(self.directory, self.generation)

    def _folders(self) -> list[list[str | int]]:
        """The folders photos are in, as [path, photos in it and below], the fullest first
        (then by path), up to FOLDERS_LISTED of them and FOLDER_CHARS_LISTED characters of
        paths: what the page offers its folder filter. Counted here, where the paths were just
        written, rather than by the server at each start (a scan of every path)."""
        counts: Counter[str] = Counter()
        # rtrim strips the path's last part: the characters that are not a slash, from the end
        for folder, photos in self._db.execute(
                "SELECT rtrim(path, replace(path, '/', '')), COUNT(*) FROM items GROUP BY 1"):
            parts = [part for part in folder.split("/") if part]  # [] for the root's photos
            for depth in range(1, len(parts) + 1):
                counts["/".join(parts[:depth])] += photos
        listed: list[list[str | int]] = []
        room = FOLDER_CHARS_LISTED
        for path, photos in sorted(counts.items(), key=lambda entry: (-entry[1], entry[0])):
            if len(path) > MAX_FOLDER_CHARS:  # the filter would refuse it
                continue
            if len(listed) == FOLDERS_LISTED or len(path) > room:
                break
            listed.append([path, photos])
            room -= len(path)
        return listed

    def close(self) -> None:
        for file in self._matrices.values():
            file.close()
        self._db.close()

    def __enter__(self) -> GenerationWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class MatrixRows:
    """Rows of a matrix file read by position (`os.pread`), a run of adjacent rows at a time:
    how the indexer reads the previous generation's vectors, where a memory map would fill its
    resident memory with every page it touched. An .npy file, or raw rows of `dtype` x `dim`."""

    def __init__(self, path: Path, dtype: str | None = None, dim: int | None = None):
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        if dtype is None or dim is None:  # an .npy file: its header says
            version = np.lib.format.read_magic(self._file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, header_dtype = read_header(self._file)
            self.dtype, self.dim = np.dtype(header_dtype), int(shape[1])
        else:
            self.dtype, self.dim = np.dtype(dtype), int(dim)
        self.offset = self._file.tell()
        self.row_bytes = self.dtype.itemsize * self.dim

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The rows asked, in the order asked."""
        wanted = np.asarray(rows, np.int64)
        out = np.empty((len(wanted), self.dim), self.dtype)
        if not len(wanted):
            return out
        order = np.argsort(wanted, kind="stable")
        ranked = wanted[order]
        starts = np.flatnonzero(np.diff(ranked, prepend=-2) != 1)  # runs of adjacent rows
        for begin, end in zip(starts, [*starts[1:], len(ranked)], strict=True):
            first, count = int(ranked[begin]), int(end - begin)
            data = os.pread(self._file.fileno(), count * self.row_bytes,
                            self.offset + first * self.row_bytes)
            if len(data) != count * self.row_bytes:
                raise GalleryError(f"{self._file.name} holds fewer rows than its index says")
            out[order[begin:end]] = np.frombuffer(data, self.dtype).reshape(count, self.dim)
        return out

    def close(self) -> None:
        self._file.close()


def _read_manifest(directory: Path) -> dict | None:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def _fsync(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _remove_stale(directory: Path, generation: int) -> None:
    keep = {f"{kind}-{generation}.{suffix}" for kind, suffix in GENERATION_FILES}
    for kind, suffix in GENERATION_FILES:
        for path in directory.glob(f"{kind}-*.{suffix}"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def latest_index(folder: Path) -> Path | None:
    """The index under `folder` (runs/index) whose manifest was written last, if any: the one
    `make demo` or `python -m scripts.index` built most recently."""
    manifests = [path for path in Path(folder).glob(f"*/{MANIFEST}") if path.is_file()]
    return max(manifests, key=lambda path: path.stat().st_mtime_ns).parent if manifests \
        else None
