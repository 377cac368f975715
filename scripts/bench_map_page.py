"""The page's map view (web/map.js) in headless Chromium on loopback: how soon the map of a
large gallery is drawn, and how smoothly it pans and zooms.

    python -m scripts.bench_map_page                      # 10,000 and 100,000 images
    python -m scripts.bench_map_page --sizes 10000        # about a minute
    python -m scripts.bench_map_page --record             # also docs/figures/bench_map_page.md

No photo is decoded. Each gallery is written directly (`write_generation`) with the real
model's fingerprint: unit vectors of the model's dimension clustered around the vectors of
common caption words (so the regions' labels and a placed word mean something), fake records
whose files do not exist, and, up to 20,000 images (above, the map reply carries none), a
thumbnail per image (one of a few small generated JPEGs, a cluster's colour). The map file is
written beside the index with `save_map`, laid out by the server's own t-SNE (`compute_layout`)
up to 10,000 images and by PCA above (t-SNE takes ~90 s at 100,000: this measures the page,
not the layout; `--layout` chooses). Then `python -m server` serves it and Chromium (a laptop's
1280x800 window, software rendering as headless runs it) opens the page:

- load: from a click on "Map" (a script's, timed in the page) to the first frame that drew
  every image. "first ask": the server's first map request, which reads the map file (its
  regions labelled as the indexer labels them) and packs the reply;
  "cached": a new page, the server's reply made already. Target: at most 1 s.
- pan and zoom: 3 s of mouse events dispatched on the canvas, one each frame: a drag back
  and forth over the whole gallery, the wheel zooming in around a point (thumbnails come in
  where the map carries them), then out while dragging. The requestAnimationFrame deltas give
  the median frames per second and the 95th percentile frame time. Target: at least 30 fps.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.gallery_map import compute_layout, labelled_regions, save_map
from server.serve.thumbnails import SETTINGS, thumbnail_key, write_thumbnail
from server.vectors import normalized
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

WORDS = ("dog", "cat", "beach", "car", "tree", "water", "snow", "mountain", "flower", "bird",
         "boat", "city", "road", "food", "child", "horse", "grass", "bike", "ball", "building",
         "sky", "river", "bridge", "train", "street", "park", "field", "sunset", "house", "man",
         "woman", "girl", "boy", "rock", "sand", "wave", "bench", "table", "window", "door")
SPREAD = 1.1  # the noise's norm around a word's vector (a cluster's members' cosine ~0.7)
THUMBS_UP_TO = 20_000  # the server's MAP_THUMBS_UP_TO: a larger map carries none
TSNE_UP_TO = 10_000  # --layout auto: t-SNE up to here, PCA above
LOAD_TARGET_MS = 1000
FPS_TARGET = 30
SECONDS = 3.0
VIEWPORT = {"width": 1280, "height": 800}
# The first map request of a large gallery is over a second of the server's work (its
# regions), charged to the asking address: past the default burst (1 s) that address's next
# requests would be answered `busy` for a while. This measures the page: every request here
# comes from one address, so it may spend more at once.
SERVER_FLAGS = ["--address-burst", "30"]

# The click on "Map" and the first frame with every image, timed in the page
LOAD = """async () => {
  const started = performance.now();
  document.getElementById('map-toggle').click();
  for (;;) {
    await new Promise((done) => requestAnimationFrame(done));
    const view = wordpixMap.view();
    if (view.count && view.drawn === view.count) return view.at - started;
    if (performance.now() - started > 120000) return -1;
  }
}"""

# Mouse events on the canvas, one between each two frames, for `seconds`; the frames' deltas
# and the map's own drawing time per frame
PAN_AND_ZOOM = """async (seconds) => {
  const canvas = document.getElementById('map-canvas');
  const box = canvas.getBoundingClientRect();
  const cx = box.left + box.width / 2;
  const cy = box.top + box.height / 2;
  const pointer = (type, x, y) => canvas.dispatchEvent(new PointerEvent(type, {
    pointerId: 7, pointerType: 'mouse', isPrimary: true, clientX: x, clientY: y, button: 0,
    buttons: type === 'pointerup' ? 0 : 1, bubbles: true, cancelable: true }));
  const wheel = (deltaY, x, y) => canvas.dispatchEvent(new WheelEvent('wheel', {
    deltaY, clientX: x, clientY: y, bubbles: true, cancelable: true }));
  const frames = [];
  const draws = [];
  const first = wordpixMap.view().frames;
  let start = null;
  let last = null;
  let dragging = false;
  let modes = new Set();
  await new Promise((resolve) => {
    function frame(now) {
      if (start === null) start = now;
      else frames.push(now - last);
      last = now;
      const view = wordpixMap.view();
      draws.push(view.ms);
      modes.add(view.mode);
      const t = (now - start) / (seconds * 1000);
      if (t >= 1) {
        if (dragging) pointer('pointerup', cx, cy);
        resolve();
        return;
      }
      requestAnimationFrame(frame);
      // after the frame, as a user's input comes (not inside a frame's callbacks, whose own
      // requests for a frame wait for the next)
      setTimeout(() => move(t), 0);
    }
    function move(t) {
      const swing = box.width * 0.3 * Math.sin(2 * Math.PI * 3 * t);
      if (t < 1 / 3 || t >= 2 / 3) {
        // a drag back and forth; zoomed in, the last third also zooms out
        if (!dragging) pointer('pointerdown', cx + swing, cy);
        dragging = true;
        pointer('pointermove', cx + swing, cy + swing / 4);
        if (t >= 2 / 3) wheel(40, cx, cy);
      } else {
        if (dragging) pointer('pointerup', cx + swing, cy);
        dragging = false;
        wheel(-40, cx + box.width * 0.1, cy - box.height * 0.1);  // in, around a point
      }
    }
    requestAnimationFrame(frame);
  });
  return { frames, draws, drawn: wordpixMap.view().frames - first, modes: [...modes] };
}"""


def clustered(count: int, words, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`count` unit vectors around the vectors of WORDS (those in the vocabulary), and each
    one's cluster."""
    known = [w for w in WORDS if w in words.index]
    centres = normalized(np.stack([words.matrix[words.index[w]] for w in known]))
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, len(known), count)
    noise = rng.normal(size=(count, centres.shape[1])).astype(np.float32)
    noise *= SPREAD / np.sqrt(centres.shape[1])
    return normalized(centres[cluster] + noise).astype(np.float32), cluster


def pca_layout(vectors: np.ndarray) -> np.ndarray:
    """The two leading principal components, scaled by one factor into the unit square."""
    centred = vectors - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred[:: max(1, len(centred) // 20_000)], full_matrices=False)
    points = centred @ axes[:2].T
    low, extent = points.min(axis=0), np.ptp(points, axis=0)
    fitted = (points - low) / extent.max() + (1 - extent / extent.max()) / 2
    return np.clip(fitted, 0, 1).astype(np.float32)


def thumbnails(colours: int) -> list[bytes]:
    """Small JPEGs, one colour each, as the indexer's thumbnails would be (256 px side)."""
    made = []
    for n in range(colours):
        hue = int(255 * n / colours)
        image = Image.new("HSV", (256, 192), (hue, 150, 200)).convert("RGB")
        for x in range(0, 256, 32):  # a little detail, so that they decode as photos would
            image.paste((255 - hue, 90, 60), (x, (x * 3) % 160, x + 12, (x * 3) % 160 + 24))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        made.append(buffer.getvalue())
    return made


def build(folder: Path, count: int, layout: str) -> str:
    """The synthetic index and its map under `folder`; returns how it was laid out."""
    words = load_word_space()
    vectors, cluster = clustered(count, words)
    with_thumbs = count <= THUMBS_UP_TO
    items = [Item(id=n + 1, row=n, path=f"synthetic/{n:06d}.jpg", size=10_000 + n,
                  mtime_ns=1_700_000_000_000_000_000 + n, caption=None,
                  taken="2024-05-01T12:00:00") for n in range(count)]
    index = folder / "index"
    write_generation(index, root=folder / "photos", model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=items, vectors=vectors, skipped=[], next_id=count + 1,
        thumbnails=SETTINGS if with_thumbs else None)
    if with_thumbs:
        pictures = thumbnails(int(cluster.max()) + 1)
        for item, c in zip(items, cluster, strict=True):
            write_thumbnail(index, thumbnail_key(item.path, item.size, item.mtime_ns, SETTINGS),
                            pictures[c])
    chosen = layout if layout != "auto" else ("tsne" if count <= TSNE_UP_TO else "pca")
    started = time.perf_counter()
    xy = compute_layout(vectors) if chosen == "tsne" else pca_layout(vectors)
    print(f"  {count:,} images laid out by {chosen} in {time.perf_counter() - started:.1f} s",
          file=sys.stderr, flush=True)
    # labelled as the indexer labels them (update_gallery_map with the model's words)
    words = load_word_space()
    regions = labelled_regions(xy, vectors, words.words, words.matrix,
                               describing=words.describing)
    save_map(index, np.arange(1, count + 1), xy, Gallery(index).generation, regions)
    return chosen


def measure(url: str) -> dict:
    """The map's load (first ask, then cached) and the pan and zoom, in one browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        loads = []
        for _ in range(2):  # the first ask, then a new page: the server's reply made already
            page = browser.new_context(viewport={"width": VIEWPORT["width"],
                                                 "height": VIEWPORT["height"]}).new_page()
            page.goto(url)
            page.wait_for_selector("#connection[data-state=connected]")
            page.wait_for_selector("#map-toggle:not([hidden])")
            page.wait_for_selector("#grid[data-q='']", state="attached")
            loads.append(page.evaluate(LOAD))
            count = page.evaluate("wordpixMap.view().count")
        page.wait_for_timeout(300)
        run = page.evaluate(PAN_AND_ZOOM, SECONDS)
        reply_bytes = page.evaluate("""() => new Promise((resolve) => {
            const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
            ws.onmessage = (event) => {
              const message = JSON.parse(event.data);
              if (message.type === 'hello') ws.send(JSON.stringify({type: 'map', id: 1}));
              else if (message.type === 'map') { resolve(event.data.length); ws.close(); }
            };
        })""")
        browser.close()
    return {"count": count, "loads": loads, "reply_mb": reply_bytes / 1e6, **run}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def row(size: int, layout: str, found: dict) -> str:
    frames = found["frames"]
    median = statistics.median(frames)
    p95 = percentile(frames, 0.95)
    draw95 = percentile([d for d in found["draws"] if d is not None], 0.95)
    first, cached = found["loads"]
    fps = 1000 / median
    drawn_as = " then ".join(sorted(found["modes"]))
    load_met = "yes" if max(first, cached) <= LOAD_TARGET_MS else \
        ("cached only" if cached <= LOAD_TARGET_MS else "**no**")
    return (f"| {size:,} | {layout} | {found['reply_mb']:.2f} | {first:.0f} | {cached:.0f} | "
            f"<= {LOAD_TARGET_MS:,} | {load_met} | {fps:.0f} | {p95:.1f} | {draw95:.1f} | "
            f"{len(frames)} ({found['drawn']} drawn, {drawn_as}) | >= {FPS_TARGET} | "
            f"{'yes' if fps >= FPS_TARGET else '**no**'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--layout", choices=("auto", "tsne", "pca"), default="auto",
                        help=f"auto: t-SNE up to {TSNE_UP_TO:,} images, PCA above")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_map_page"):
        print(f"## The map view in headless Chromium ({VIEWPORT['width']}x{VIEWPORT['height']}, "
              f"software rendering), synthetic galleries, loopback")
        print("| images | layout | map reply MB | load ms, first ask | load ms, cached | "
              "target | met | pan and zoom fps (median) | p95 frame ms | p95 draw ms | "
              "frames | target | met |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as folder:
                layout = build(Path(folder), size, args.layout)
                server = start_server(Path(folder) / "index", Path(folder) / "server.log",
                                      timeout=300, flags=SERVER_FLAGS)
                try:
                    found = measure(server.url)
                finally:
                    stop_server(server)
                assert found["count"] == size, json.dumps(found)[:200]
                print(row(size, layout, found), flush=True)


if __name__ == "__main__":
    main()
