"""The Ray indexer on a real two-node Ray cluster (both nodes on this machine).

It must write the index the single-process indexer writes (same ids, paths, skipped files and,
within float tolerance, vectors), share the work between the nodes, update incrementally, and
resume after being killed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.indexer import IndexOptions, build_index, scan_folder
from tests.conftest import REPO
from tests.stress.killing import saved_results

ray = pytest.importorskip("ray", reason="Ray is the `scale` extra: pip install '.[scale]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")
from server.serve.ray_indexer import RayEmbedder  # noqa: E402  (after the skip)

IMAGES = 200
CHUNK = 32
BAD = {"bad/notes.jpg": "not an image", "bad/truncated.jpg": "cannot decode"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and a worker node of one CPU each: the embedding actors land one per node."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as ray_indexer does: no reports
    nodes = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False})
    nodes.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    nodes.wait_for_nodes()
    yield nodes.address
    nodes.shutdown()


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    return ImageEncoder()


def write_photos(folder: Path) -> None:
    """IMAGES distinct small photos (crops of real ones, some flipped) and two broken files."""
    rng = np.random.default_rng(0)
    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket()]
    for i in range(IMAGES):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - 150), rng.integers(0, photo.shape[1] - 200)
        crop = photo[top : top + 150, left : left + 200][:, :: 1 - 2 * (i % 2)]
        path = folder / f"set{i % 3}" / f"{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=85)
    (folder / "bad").mkdir()
    (folder / "bad" / "notes.jpg").write_text("not an image at all\n")
    jpeg = (folder / "set0" / "000.jpg").read_bytes()
    (folder / "bad" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])


def index(folder: Path, index_dir: Path, encoder: ImageEncoder, embedder=None):
    extra = {} if embedder is None else {"embedder": embedder}
    return build_index(scan_folder(folder), folder, index_dir, encoder,
                       options=IndexOptions(progress=False, chunk_size=CHUNK), **extra)


def assert_same_index(ours: Path, theirs: Path) -> None:
    a, b = Gallery(ours), Gallery(theirs)
    items_a, items_b = a.all_items(), b.all_items()
    assert [(i.id, i.path, i.size, i.mtime_ns) for i in items_a] == \
        [(i.id, i.path, i.size, i.mtime_ns) for i in items_b]
    assert [(s.path, s.reason) for s in a.skipped()] == [(s.path, s.reason) for s in b.skipped()]
    assert np.allclose(np.asarray(a.vectors), np.asarray(b.vectors), atol=1e-5)
    assert a.manifest["next_id"] == b.manifest["next_id"]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, encoder) -> tuple[Path, Path]:
    """The photos, and their index by the single-process indexer: what Ray must reproduce."""
    root = tmp_path_factory.mktemp("ray")
    write_photos(root / "photos")
    report = index(root / "photos", root / "single", encoder)
    assert report.embedded == IMAGES and len(report.skipped) == len(BAD)
    return root / "photos", root / "single"


def test_two_nodes_write_the_single_process_index_and_share_the_work(
        cluster, gallery, encoder, tmp_path):
    photos, single = gallery
    embedder = RayEmbedder(address=cluster)
    report = index(photos, tmp_path / "ray", encoder, embedder)
    assert (report.embedded, report.total) == (IMAGES, IMAGES)
    assert {s.path: s.reason.split(":")[0] for s in report.skipped}.keys() == BAD.keys()
    assert_same_index(tmp_path / "ray", single)
    assert len(embedder.per_node) == 2, embedder.per_node  # both nodes embedded
    assert sum(embedder.per_node.values()) == IMAGES
    assert min(embedder.per_node.values()) >= IMAGES // 5, embedder.per_node

    # An update (one file deleted, one changed, one new) on copies that keep the mtimes: the
    # same rules as the single-process indexer, which updates its own copy of the index.
    copy = tmp_path / "photos"
    subprocess.run(["cp", "-a", str(photos), str(copy)], check=True)
    subprocess.run(["cp", "-a", str(single), str(tmp_path / "single")], check=True)
    (copy / "set1" / "001.jpg").unlink()
    Image.fromarray(samples.camera()[:150, :200]).save(copy / "set0" / "003.jpg")
    Image.fromarray(samples.coffee()[:150, :200]).save(copy / "new.png")
    expected = index(copy, tmp_path / "single", encoder)
    again = index(copy, tmp_path / "ray", encoder, RayEmbedder(address=cluster))
    assert (again.embedded, again.removed, again.total) == (2, 1, IMAGES)
    assert (again.embedded, again.reused, again.removed) == \
        (expected.embedded, expected.reused, expected.removed)
    assert_same_index(tmp_path / "ray", tmp_path / "single")


def test_a_killed_ray_run_resumes(cluster, gallery, encoder, tmp_path):
    photos, single = gallery
    target = tmp_path / "index"
    command = [sys.executable, "-m", "scripts.index", str(photos), "--index", str(target),
               "--ray", cluster, "--chunk-size", str(CHUNK), "--quiet"]
    log = tmp_path / "killed.log"  # a file, not a pipe: Ray's logging must never block it
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while saved_results(target) < 2 * CHUNK:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the Ray indexer never saved a chunk"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (target / "manifest.json").exists()  # nothing half-written became an index

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    done = int(resumed.stdout.split("(")[1].split(" embedded")[0])
    assert done <= IMAGES - 2 * CHUNK, resumed.stdout  # the saved chunks were not redone
    per_node = [int(n) for n in re.findall(r"node \w+ embedded (\d+) images", resumed.stderr)]
    assert sum(per_node) == done and not (target / "partial").exists()
    assert_same_index(target, single)
