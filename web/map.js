// The map: every image of the gallery at its place on a 2-D layout of the joint space (the
// server's `map`, asked once when the map is first shown), drawn on a canvas in place of the
// grid. Like lies near like, so the map shows what the gallery holds and where: regions carry
// the word whose best images lie there (a click on it, or in the region, searches for it), the
// current query's results stand out with a mark where the query sits among them, and a word
// placed from the map's toolbar is marked where its images are, without touching the query or
// the grid.
//
// Built for 100,000 images: the positions are typed arrays, each frame draws only what is in
// view, the dots are written as pixels into one ImageData (scripts/bench_map_page.py: a path
// of 100,000 rectangles, or as many fillRect calls, held Chromium's software rendering to 15
// and 20 frames a second, the pixels to 60), nothing is one DOM node per image, and a frame is
// drawn (on requestAnimationFrame) only when something changed. Zoomed in on a few hundred images,
// they are drawn as their thumbnails, loaded a few at a time as they come into view.
"use strict";

const MAP_THUMBS_UP_TO = 300;   // images in view at most for thumbnails instead of dots
const MAP_LOADS = 6;            // thumbnails loading at once (the rest wait their turn)
const MAP_KEPT = 800;           // thumbnails kept loaded (the oldest go first)
const MAP_PLACE_K = 10;         // results a word is placed among; a query's mark uses as many
const MAP_MIN_ZOOM = 0.5;
const MAP_MAX_ZOOM = 500;
const MAP_STEP = 1.6;           // one zoom step: the buttons, + and -
const MAP_PAN = 80;             // px an arrow key moves (Shift: three times as far)
const MAP_TAP = 6;              // px a pointer may move and still click
const MAP_REGION_REACH = 24;    // px past a region's circle a click still runs its word
const MAP_FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, ' +
  "sans-serif";
// the regions' colours (the level-0 region nearest each image), as hues: distinct, none the
// accent's blue, in the light and the dark scheme alike
const MAP_HUES = [28, 145, 280, 350, 185, 55, 105, 320];

const mapState = {
  open: false,
  asking: null,       // the id of the map request whose reply is wanted
  outdated: true,     // the layout came before the last hello (the server may have restarted)
  data: null,         // the layout as drawn (readLayout)
  view: { cx: 0.5, cy: 0.5, zoom: 1 },  // the centre in map units, and 1: the whole gallery
  width: 0,           // the canvas's CSS size
  height: 0,
  context: null,
  image: null,        // the dots' ImageData, the canvas's size in device pixels
  pixels: null,       // ... as one 32-bit word a pixel
  frame: 0,           // a requestAnimationFrame pending
  colours: null,      // from the page's CSS (light or dark)
  results: [],        // the current query's results: [{ id, score }], best first
  query: "",          // its text
  close: 0,           // how many of them are close matches (the reply's `relevant`)
  rank: null,         // per image (row of the layout): its rank among the results, -1: none
  queryAt: null,      // where the query sits: { x, y } in map units
  placing: 0,         // place-N: the words' own request ids
  waiting: new Map(), // "place-N" -> the word asked
  words: [],          // words placed: { word, results, at }
  thumbs: new Map(),  // url -> { image, ready, failed }
  wanted: [],         // thumbnails in view not loaded yet, nearest the centre first
  loading: 0,
  pointers: new Map(),  // pointer id -> its last { x, y } on the canvas
  travel: 0,          // px the pointer moved since it went down
  dragged: false,     // ... further than a click: the click that follows is no click
  keyboard: false,    // the canvas is driven by keys: show the centre it opens
  frames: 0,          // frames drawn (the benchmark counts them)
  drawn: { visible: 0, labels: [], hits: [], marks: [], level: 0, at: 0, size: 0,
           mode: "dots" },
};

const textWidths = new Map();  // "font|text" -> px: labels are measured once

// ------------------------------------------------------------------ showing it

// The hello: a map to offer when there is a gallery; a layout from before it may be another
// gallery's (a restarted server), so it is asked again, and requests in flight were lost
function showMap(gallery) {
  ui.mapToggle.hidden = !(gallery && gallery.count > 0);
  mapState.asking = null;
  mapState.waiting.clear();
  mapState.outdated = true;
  if (ui.mapToggle.hidden && mapState.open) toggleMap(false);
  else if (mapState.open) loadMap();
}

// Another server: another gallery, whose ids name other pictures
function forgetMap() {
  Object.assign(mapState, { data: null, asking: null, outdated: true, results: [], query: "",
                            rank: null, queryAt: null, words: [], wanted: [] });
  mapState.waiting.clear();
  mapState.thumbs.clear();
  renderMapLegend();
  requestDraw();
}

const mapOpen = () => mapState.open;

function toggleMap(open = !mapState.open) {
  mapState.open = open;
  ui.mapToggle.setAttribute("aria-pressed", String(open));
  ui.map.hidden = !open;
  document.body.classList.toggle("map-open", open);  // the map takes the grid's place
  if (!open) return;
  // the grid under the map shows what the map highlights: the query, not the duplicates
  if (state.view.mode === "duplicates") runQuery(ui.q.value, PAGE, false);
  readColours();
  measureCanvas();
  loadMap();
  describeMap();
  requestDraw();
  // the whole canvas on the screen (on a phone it starts below the first one)
  const box = ui.mapCanvas.getBoundingClientRect();
  if (box.bottom > innerHeight || box.top < 0) ui.mapCanvas.scrollIntoView({ block: "nearest" });
}

function loadMap() {
  if (mapState.asking !== null || (mapState.data && !mapState.outdated)) return;
  if (!state.connected) {
    if (!mapState.data) setMapStatus("waiting for the server…");
    return;  // the hello asks
  }
  mapState.asking = ++state.seq;  // its own id: the grid's latest request stays the latest
  send({ type: "map", id: mapState.asking });
  if (!mapState.data) setMapStatus("Loading the map…");
}

function onMap(reply) {
  if (reply.id !== mapState.asking) return;
  mapState.asking = null;
  mapState.outdated = false;
  const before = mapState.data;
  mapState.data = readLayout(reply);
  if (!before || before.count !== mapState.data.count) resetView();
  mapState.wanted = [];  // the thumbnails loaded stay: a URL names one picture for good
  placeResults();
  for (const placed of mapState.words) placed.at = placeOf(placed.results);
  renderMapLegend();
  describeMap();
  requestDraw();
}

// A map request refused: said where the map is; asked again when the server was busy
function mapFailed(reply) {
  mapState.asking = null;
  if (reply.code === "busy") {
    setMapStatus("The server is busy: the map is asked for again in a moment…");
    setTimeout(() => {
      if (mapState.open) loadMap();
    }, Math.max(250, reply.retry_ms || 1000));
    return;
  }
  setMapStatus(`The map could not be loaded: ${reply.error || "the server did not say why"}`);
}

// ------------------------------------------------------------------ the layout

function fromBase64(text) {
  const binary = atob(text || "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The reply as the frames draw it: ids and positions in typed arrays (the wire's int32 and
// uint16, little-endian), each image's colour, the regions by level, the positions' extent
function readLayout(reply) {
  const count = reply.count || 0;
  const idBytes = fromBase64(reply.ids);
  const xyBytes = fromBase64(reply.xy);
  const ids = new Int32Array(count);
  const x = new Float32Array(count);
  const y = new Float32Array(count);
  const idView = new DataView(idBytes.buffer);
  const xyView = new DataView(xyBytes.buffer);
  const packed = LITTLE_ENDIAN && idBytes.length >= 4 * count && xyBytes.length >= 4 * count
    ? { ids: new Int32Array(idBytes.buffer, 0, count), xy: new Uint16Array(xyBytes.buffer, 0,
      2 * count) } : null;
  let x0 = 1;
  let x1 = 0;
  let y0 = 1;
  let y1 = 0;
  for (let i = 0; i < count; i++) {
    ids[i] = packed ? packed.ids[i] : idView.getInt32(4 * i, true);
    x[i] = (packed ? packed.xy[2 * i] : xyView.getUint16(4 * i, true)) / 65535;
    y[i] = (packed ? packed.xy[2 * i + 1] : xyView.getUint16(4 * i + 2, true)) / 65535;
    x0 = Math.min(x0, x[i]);
    x1 = Math.max(x1, x[i]);
    y0 = Math.min(y0, y[i]);
    y1 = Math.max(y1, y[i]);
  }
  const index = new Map();
  for (let i = 0; i < count; i++) index.set(ids[i], i);
  const regions = (reply.regions || []).filter((r) => r.label && Number.isFinite(r.x));
  const levels = [0, 1, 2].map((level) => regions.filter((r) => r.level === level)
    .sort((a, b) => b.count - a.count));
  const colour = colourByRegion(x, y, levels[0]);
  const thumbs = Array.isArray(reply.thumbs) && reply.thumbs.some(Boolean) ? reply.thumbs : null;
  return { count, ids, x, y, index, thumbs, levels, colour, visible: new Int32Array(count),
           bounds: count ? { x0, x1, y0, y1 }
             : { x0: 0, x1: 1, y0: 0, y1: 1 } };
}

// Each image takes the colour of the nearest coarse region: what looks like one region is one
function colourByRegion(x, y, coarse) {
  const colour = new Uint8Array(x.length);
  if (!coarse.length) return colour;
  for (let i = 0; i < x.length; i++) {
    let best = 0;
    let nearest = Infinity;
    for (let r = 0; r < coarse.length; r++) {
      const dx = x[i] - coarse[r].x;
      const dy = y[i] - coarse[r].y;
      const d = dx * dx + dy * dy;
      if (d < nearest) {
        nearest = d;
        best = r;
      }
    }
    colour[i] = best % MAP_HUES.length;
  }
  return colour;
}

// ------------------------------------------------------------------ queries on the map

// The last results reply, whatever view is shown: the map highlights them when it is shown,
// the close matches (`relevant`, where the reply says) most
function mapResults(results, query, relevant) {
  mapState.results = (results || []).map((r) => ({ id: r.id, score: r.score }));
  mapState.query = mapState.results.length ? query : "";
  mapState.close = typeof relevant === "number" ? relevant : MAP_PLACE_K;
  placeResults();
  if (mapState.open) {
    describeMap();
    requestDraw();
  }
}

function placeResults() {
  const data = mapState.data;
  if (!data) return;
  mapState.rank = new Int32Array(data.count).fill(-1);
  mapState.results.forEach((r, rank) => {
    const row = data.index.get(r.id);
    if (row !== undefined && mapState.rank[row] < 0) mapState.rank[row] = rank;
  });
  mapState.queryAt = mapState.results.length ? placeOf(mapState.results) : null;
}

// Where a query sits: the score-weighted median of its best results' positions, axis by axis
// (a median: a query between two clusters goes into one, not into the empty space between)
function placeOf(results) {
  const data = mapState.data;
  if (!data) return null;
  const rows = [];
  const weights = [];
  for (const r of results) {
    const row = data.index.get(r.id);
    if (row === undefined) continue;
    rows.push(row);
    weights.push(Math.max(typeof r.score === "number" ? r.score : 0, 1e-3));
    if (rows.length === MAP_PLACE_K) break;
  }
  if (!rows.length) return null;
  return { x: weightedMedian(rows.map((row) => data.x[row]), weights),
           y: weightedMedian(rows.map((row) => data.y[row]), weights) };
}

function weightedMedian(values, weights) {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const half = weights.reduce((sum, w) => sum + w, 0) / 2;
  let cumulative = 0;
  for (const i of order) {
    cumulative += weights[i];
    if (cumulative >= half) return values[i];
  }
  return values[order[order.length - 1]];
}

// ------------------------------------------------------------------ words placed on the map

// Its own request id ("place-N"), outside claim(): the user's query and the grid stay
function placeWord(text) {
  const word = text.trim();
  if (!word) return;
  const id = `place-${++mapState.placing}`;
  if (!send({ type: "query", q: word, k: MAP_PLACE_K, id })) {
    setMapStatus("waiting for the server…");
    return;
  }
  mapState.waiting.set(id, word);
  setMapStatus(`Placing “${word}”…`);
}

const isPlacing = (message) => typeof message.id === "string" && message.id.startsWith("place-");

function onPlaced(reply) {
  const word = mapState.waiting.get(reply.id);
  if (word === undefined) return;
  mapState.waiting.delete(reply.id);
  if (reply.type === "error") {
    setMapStatus(`“${word}” could not be placed: ${reply.error}`);
    return;
  }
  if (reply.type !== "results") return;
  const results = (reply.results || []).map((r) => ({ id: r.id, score: r.score }));
  mapState.words = mapState.words.filter((placed) => placed.word !== word);
  const placed = { word, results, at: placeOf(results) };
  mapState.words.push(placed);
  if (ui.mapWord.value.trim() === word) ui.mapWord.value = "";
  renderMapWords();
  const near = Math.min(results.length, MAP_PLACE_K);
  setMapStatus(placed.at || !mapState.data ? `“${word}” is marked among its ${near} nearest ` +
    "images" : `“${word}”: none of its images is on the map`);
  requestDraw();
}

function clearWords() {
  mapState.words = [];
  renderMapWords();
  setMapStatus("Cleared the words placed on the map");
  requestDraw();
}

// ------------------------------------------------------------------ the view

// Map units to CSS px at zoom 1: the positions' extent fits the canvas, with room for labels
function fitScale() {
  const { bounds } = mapState.data || { bounds: { x0: 0, x1: 1, y0: 0, y1: 1 } };
  const margin = Math.min(48, Math.min(mapState.width, mapState.height) * 0.08);
  const wide = Math.max(bounds.x1 - bounds.x0, 0.02);
  const high = Math.max(bounds.y1 - bounds.y0, 0.02);
  return Math.max(1, Math.min((mapState.width - 2 * margin) / wide,
                              (mapState.height - 2 * margin) / high));
}

const mapScale = () => fitScale() * mapState.view.zoom;

function resetView() {
  const { bounds } = mapState.data || { bounds: { x0: 0, x1: 1, y0: 0, y1: 1 } };
  mapState.view = { cx: (bounds.x0 + bounds.x1) / 2, cy: (bounds.y0 + bounds.y1) / 2, zoom: 1 };
  requestDraw();
}

// Some of the gallery stays in view: the map cannot be lost off the side (but its edge can
// come to the middle, to zoom in on an image there)
function keepInView() {
  const { bounds } = mapState.data || { bounds: { x0: 0, x1: 1, y0: 0, y1: 1 } };
  const view = mapState.view;
  const scale = mapScale();
  const wide = 0.45 * mapState.width / scale;
  const high = 0.45 * mapState.height / scale;
  view.cx = Math.min(bounds.x1 + wide, Math.max(bounds.x0 - wide, view.cx));
  view.cy = Math.min(bounds.y1 + high, Math.max(bounds.y0 - high, view.cy));
}

// Move the map by (dx, dy) CSS px, as a drag does
function panMap(dx, dy) {
  const scale = mapScale();
  mapState.view.cx -= dx / scale;
  mapState.view.cy -= dy / scale;
  keepInView();
  requestDraw();
}

// Zoom by `factor` keeping the point under (px, py) where it is (the centre by default)
function zoomMap(factor, px = mapState.width / 2, py = mapState.height / 2) {
  const view = mapState.view;
  const before = mapScale();
  const zoom = Math.min(MAP_MAX_ZOOM, Math.max(MAP_MIN_ZOOM, view.zoom * factor));
  const wx = view.cx + (px - mapState.width / 2) / before;
  const wy = view.cy + (py - mapState.height / 2) / before;
  view.zoom = zoom;
  const after = mapScale();
  view.cx = wx - (px - mapState.width / 2) / after;
  view.cy = wy - (py - mapState.height / 2) / after;
  keepInView();
  requestDraw();
}

// Map units to the canvas's CSS px, for the current view
function mapTransform() {
  const scale = mapScale();
  return { scale, ox: mapState.width / 2 - mapState.view.cx * scale,
           oy: mapState.height / 2 - mapState.view.cy * scale };
}

// ------------------------------------------------------------------ drawing

function requestDraw() {
  if (mapState.frame || !mapState.open) return;
  mapState.frame = requestAnimationFrame(drawMap);
}

function readColours() {
  const css = getComputedStyle(document.documentElement);
  const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const colours = {
    ground: get("--panel", "#fff"), text: get("--text", "#1d1d1f"), line: get("--line", "#ddd"),
    muted: get("--muted", "#6b6b70"), accent: get("--accent", "#2f6fdf"),
    marker: get("--marker", "#b3261e"), art: get("--art-ground", "#f4f4f1"),
    dots: MAP_HUES.map((hue) => `hsl(${hue} ${dark ? 45 : 50}% ${dark ? 62 : 48}%)`),
  };
  // the same as pixels, and dimmed (towards the ground) while results stand out
  const ground = rgbOf(colours.ground);
  const dots = colours.dots.map(rgbOf);
  colours.groundPixel = packPixel(ground);
  colours.dotPixels = Uint32Array.from(dots.map(packPixel));
  colours.dimPixels = Uint32Array.from(dots.map((rgb) =>
    packPixel(rgb.map((value, c) => ground[c] + (value - ground[c]) * 0.35))));
  mapState.colours = colours;
}

// Any CSS colour as [r, g, b], as a canvas paints it
function rgbOf(css) {
  const probe = rgbOf.probe || (rgbOf.probe = document.createElement("canvas")
    .getContext("2d", { willReadFrequently: true }));
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = css;
  probe.fillRect(0, 0, 1, 1);
  const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
  return [r, g, b];
}

// An opaque pixel of ImageData seen as 32-bit words (in the platform's byte order)
function packPixel([r, g, b]) {
  const [R, G, B] = [r, g, b].map((value) => Math.round(value) & 255);
  return (LITTLE_ENDIAN ? (255 << 24) | (B << 16) | (G << 8) | R : (R << 24) | (G << 16) |
    (B << 8) | 255) >>> 0;
}

function measureCanvas() {
  const box = ui.mapCanvas.getBoundingClientRect();
  mapState.width = box.width;
  mapState.height = box.height;
}

function drawMap() {
  mapState.frame = 0;
  if (!mapState.open) return;
  const started = performance.now();
  const canvas = ui.mapCanvas;
  const ratio = window.devicePixelRatio || 1;
  if (!mapState.width) measureCanvas();
  const width = mapState.width;
  const height = mapState.height;
  const pixelsWide = Math.max(1, Math.round(width * ratio));
  const pixelsHigh = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== pixelsWide || canvas.height !== pixelsHigh) {
    canvas.width = pixelsWide;
    canvas.height = pixelsHigh;
  }
  const context = mapState.context || (mapState.context = canvas.getContext("2d"));
  const colours = mapState.colours;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.fillStyle = colours.ground;
  context.fillRect(0, 0, width, height);
  const data = mapState.data;
  const drawn = { visible: 0, labels: [], hits: [], marks: [], level: 0, size: 0,
                  highlighted: 0, thumbs: 0, at: 0, mode: "dots" };
  if (data && data.count) {
    const { scale, ox, oy } = mapTransform();
    const n = cullMap(data, scale, ox, oy, width, height);
    drawn.visible = n;
    drawn.mode = data.thumbs && n <= MAP_THUMBS_UP_TO ? "thumbs" : "dots";
    if (drawn.mode === "thumbs") drawThumbs(context, data, n, scale, ox, oy, drawn);
    else drawDots(context, data, n, scale, ox, oy, drawn, ratio);
    const { marks, taken } = placeMarks(context, scale, ox, oy, width, height, drawn);
    drawLabels(context, data, scale, ox, oy, width, height, taken, drawn);
    // the results over the regions' words: what was asked for matters more
    if (drawn.mode === "dots") drawResults(context, data, drawn.visible, scale, ox, oy, drawn);
    paintMarks(context, marks, width, height);
    if (mapState.keyboard && document.activeElement === canvas) drawCentre(context);
  }
  drawn.at = performance.now();
  drawn.ms = drawn.at - started;
  mapState.frames++;
  mapState.drawn = drawn;
  reportDrawn(canvas, drawn);
  pumpThumbs();
}

// The images in view into data.visible; returns how many
function cullMap(data, scale, ox, oy, width, height) {
  const { x, y, visible } = data;
  const pad = 40;  // half the largest thumbnail: one partly in view is drawn
  const left = -pad;
  const right = width + pad;
  const top = -pad;
  const bottom = height + pad;
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const sx = x[i] * scale + ox;
    if (sx < left || sx > right) continue;
    const sy = y[i] * scale + oy;
    if (sy < top || sy > bottom) continue;
    visible[n++] = i;
  }
  return n;
}

// A dot's side in CSS px: small when many are in view, growing as one zooms in
function dotSide(data) {
  const base = data.count <= 1000 ? 6 : data.count <= 20000 ? 3 : 2;
  return Math.min(10, base * Math.pow(mapState.view.zoom, 0.35));
}

// Every dot in view as a square of pixels of its region's colour, written into one ImageData
// the canvas's size (device pixels) and put on it at once; the results then on top
function drawDots(context, data, n, scale, ox, oy, drawn, ratio) {
  const { x, y, visible, colour } = data;
  const side = dotSide(data);
  const rank = mapState.rank;
  const highlighting = mapState.results.length > 0 && rank;
  const canvas = context.canvas;
  const width = canvas.width;
  const height = canvas.height;
  if (!mapState.image || mapState.image.width !== width || mapState.image.height !== height) {
    mapState.image = context.createImageData(width, height);
    mapState.pixels = new Uint32Array(mapState.image.data.buffer);
  }
  const pixels = mapState.pixels;
  pixels.fill(mapState.colours.groundPixel);
  const palette = highlighting ? mapState.colours.dimPixels : mapState.colours.dotPixels;
  const pixelSide = Math.max(1, Math.round(side * ratio));
  const s = scale * ratio;
  const left = ox * ratio - pixelSide / 2;
  const top = oy * ratio - pixelSide / 2;
  for (let k = 0; k < n; k++) {
    const i = visible[k];
    const px = Math.round(x[i] * s + left);
    const py = Math.round(y[i] * s + top);
    const x0 = px < 0 ? 0 : px;
    const x1 = px + pixelSide > width ? width : px + pixelSide;
    const y1 = py + pixelSide > height ? height : py + pixelSide;
    const value = palette[colour[i]];
    for (let row = py < 0 ? 0 : py; row < y1; row++) {
      const base = row * width;
      for (let column = x0; column < x1; column++) pixels[base + column] = value;
    }
  }
  context.putImageData(mapState.image, 0, 0);
  drawn.size = side;
}

// The results among the dots, in the accent colour, the close matches larger and last
function drawResults(context, data, n, scale, ox, oy, drawn) {
  const { x, y, visible } = data;
  const rank = mapState.rank;
  if (!mapState.results.length || !rank) return;
  const side = drawn.size;
  const radius = Math.max(4, side * 0.8 + 2.5);
  const shown = [];
  for (let k = 0; k < n; k++) if (rank[visible[k]] >= 0) shown.push(visible[k]);
  shown.sort((a, b) => rank[b] - rank[a]);
  const close = shown.filter((i) => rank[i] < mapState.close);
  const others = shown.filter((i) => rank[i] >= mapState.close);
  context.fillStyle = mapState.colours.accent;
  context.strokeStyle = mapState.colours.ground;
  context.lineWidth = 3;
  for (const [rows, r] of [[others, radius * 0.7], [close, radius]]) {
    context.beginPath();
    for (const i of rows) {
      const sx = x[i] * scale + ox;
      const sy = y[i] * scale + oy;
      context.moveTo(sx + r, sy);
      context.arc(sx, sy, r, 0, 2 * Math.PI);
    }
    context.stroke();  // an outline under them all: a crowd of results is one patch of colour
    context.fill();
  }
  drawn.highlighted = shown.length;
  drawn.hits = [...others, ...close].map((i) => ({ i, x: x[i] * scale + ox,
                                                   y: y[i] * scale + oy, half: radius + 2 }));
}

// Few images in view: each as its thumbnail, as large as the room around it allows (about
// the distance to its nearest neighbour on screen), crowded ones small and on top; the
// results last, framed in the accent colour (the close matches boldly)
function drawThumbs(context, data, n, scale, ox, oy, drawn) {
  const { x, y, visible } = data;
  const rank = mapState.rank;
  const highlighting = mapState.results.length > 0 && rank;
  const largest = mapState.width < 560 ? 56 : 72;
  const sx = new Float32Array(n);
  const sy = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    sx[k] = x[visible[k]] * scale + ox;
    sy[k] = y[visible[k]] * scale + oy;
  }
  const sides = new Float32Array(n);
  for (let a = 0; a < n; a++) {
    let nearest = Infinity;
    for (let b = 0; b < n; b++) {
      if (a === b) continue;
      const d = Math.max(Math.abs(sx[a] - sx[b]), Math.abs(sy[a] - sy[b]));
      if (d < nearest) nearest = d;
    }
    sides[a] = Math.min(largest, Math.max(28, nearest * 1.5));  // a little overlap is fine
  }
  const ranked = (k) => (highlighting ? rank[visible[k]] : -1);
  const order = [...Array(n).keys()].sort((a, b) => {
    const ra = ranked(a);
    const rb = ranked(b);
    if ((ra >= 0) !== (rb >= 0)) return ra >= 0 ? 1 : -1;
    if (ra >= 0) return rb - ra;  // the best result on top
    return sides[b] - sides[a];
  });
  const contain = document.body.dataset.fit === "contain";
  const wanted = [];
  let ready = 0;
  for (const k of order) {
    const i = visible[k];
    const side = sides[k];
    const left = sx[k] - side / 2;
    const top = sy[k] - side / 2;
    const result = ranked(k) >= 0;
    const close = result && ranked(k) < mapState.close;
    const url = data.thumbs[i];
    const entry = url ? mapState.thumbs.get(url) : null;
    context.globalAlpha = highlighting && !result ? 0.45 : 1;
    if (entry && entry.ready) {
      drawPicture(context, entry.image, left, top, side, contain);
      ready++;
    } else {
      context.fillStyle = mapState.colours.dots[data.colour[i]];
      context.fillRect(left, top, side, side);
      if (url && !entry) {
        wanted.push({ url, away: Math.hypot(sx[k] - mapState.width / 2,
                                            sy[k] - mapState.height / 2) });
      }
    }
    context.globalAlpha = 1;
    context.lineWidth = close ? 3.5 : result ? 1.5 : 1;
    context.strokeStyle = result ? mapState.colours.accent : mapState.colours.line;
    context.strokeRect(left, top, side, side);
    drawn.hits.push({ i, x: sx[k], y: sy[k], half: side / 2 });
    if (result) drawn.highlighted++;
  }
  drawn.thumbs = ready;
  drawn.size = largest;
  // nearest the centre first: what one zooms in on comes first
  mapState.wanted = wanted.sort((a, b) => a.away - b.away).map((w) => w.url);
}

// A thumbnail in a square: cropped to fill it (photos) or whole on a light ground (clip art),
// as the grid shows them
function drawPicture(context, image, left, top, side, contain) {
  const w = image.naturalWidth;
  const h = image.naturalHeight;
  if (!w || !h) return;
  if (contain) {
    context.fillStyle = mapState.colours.art;
    context.fillRect(left, top, side, side);
    const fit = side * 0.88 / Math.max(w, h);
    context.drawImage(image, left + (side - w * fit) / 2, top + (side - h * fit) / 2,
                      w * fit, h * fit);
    return;
  }
  const crop = Math.min(w, h);
  context.drawImage(image, (w - crop) / 2, (h - crop) / 2, crop, crop, left, top, side, side);
}

// A few thumbnails at a time, those in view; each one loaded draws the map again
function pumpThumbs() {
  while (mapState.loading < MAP_LOADS && mapState.wanted.length) {
    const url = mapState.wanted.shift();
    if (mapState.thumbs.has(url)) continue;
    const entry = { image: new Image(), ready: false, failed: false };
    mapState.thumbs.set(url, entry);
    mapState.loading++;
    const done = (ok) => {
      mapState.loading--;
      entry.ready = ok;
      entry.failed = !ok;
      if (ok) requestDraw();
      pumpThumbs();
    };
    entry.image.decoding = "async";
    entry.image.src = imageUrl(url);
    // decoded off the frame: a frame that draws it does not wait for the JPEG decoder
    entry.image.decode().then(() => done(true), () => done(false));
  }
  // the oldest go first, none that is loading
  for (const [url, entry] of mapState.thumbs) {
    if (mapState.thumbs.size <= MAP_KEPT) break;
    if (entry.ready || entry.failed) mapState.thumbs.delete(url);
  }
}

// The level of the regions labelled: the coarse ones zoomed out, finer ones zoomed in
function labelLevel(data) {
  const zoom = mapState.view.zoom;
  let level = zoom < 2.2 ? 0 : zoom < 6 ? 1 : 2;
  while (level > 0 && !data.levels[level].length) level--;
  return level;
}

function textWidth(context, text) {
  const key = `${context.font}|${text}`;
  let width = textWidths.get(key);
  if (width === undefined) {
    width = context.measureText(text).width;
    if (textWidths.size > 5000) textWidths.clear();
    textWidths.set(key, width);
  }
  return width;
}

const overlaps = (a, b) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

// Text with a halo of the ground's colour: readable over dots and pictures alike
function haloText(context, text, x, y, colour) {
  context.lineJoin = "round";
  context.lineWidth = 4;
  context.strokeStyle = mapState.colours.ground;
  context.strokeText(text, x, y);
  context.fillStyle = colour;
  context.fillText(text, x, y);
}

// The regions' words, largest region first, at a readable size whatever the zoom: the
// region's word, and under it, smaller, the further words its images stand out for; a label
// that would overlap one drawn already (or a mark's) is left out
function drawLabels(context, data, scale, ox, oy, width, height, taken, drawn) {
  const level = labelLevel(data);
  const regions = data.levels[level];
  drawn.level = level;
  if (!regions.length) return;
  const biggest = regions[0].count;
  context.textAlign = "center";
  context.textBaseline = "middle";
  for (const region of regions) {
    const sx = region.x * scale + ox;
    const sy = region.y * scale + oy;
    if (sx < 0 || sx > width || sy < 0 || sy > height) continue;
    const size = Math.round((level === 0 ? 15 : 13) + 5 * Math.sqrt(region.count / biggest));
    const font = `${level === 0 ? 700 : 600} ${size}px ${MAP_FONT}`;
    const also = (region.also || []).join(" · ");
    const small = Math.round(size * 0.72);
    const alsoFont = `500 ${small}px ${MAP_FONT}`;
    context.font = font;
    let w = textWidth(context, region.label);
    if (also) {
      context.font = alsoFont;
      w = Math.max(w, textWidth(context, also));
    }
    const h = size * 1.4 + (also ? small * 1.2 : 0);
    // over the dots; above the pictures, which a label would hide
    const above = drawn.mode === "thumbs" ? drawn.size / 2 + h / 2 + 2 : 0;
    const box = { x: sx - w / 2 - 4, y: sy - above - h / 2, w: w + 8, h };
    box.x = Math.min(width - box.w - 2, Math.max(2, box.x));
    box.y = Math.min(height - box.h - 2, Math.max(2, box.y));
    if (taken.some((other) => overlaps(box, other))) continue;
    taken.push(box);
    context.font = font;
    haloText(context, region.label, box.x + box.w / 2, box.y + size * 0.7, mapState.colours.text);
    if (also) {
      context.font = alsoFont;
      haloText(context, also, box.x + box.w / 2, box.y + size * 1.4 + small * 0.5,
               mapState.colours.muted);
    }
    drawn.labels.push({ text: region.label, also, ...box });
  }
}

// The query's place (a ring and a cross, in the accent colour) and the words placed (a pin in
// the marker colour), each named beside it where no other name is; placed before the regions'
// labels, which leave the boxes they take free (returned), and painted after them
function placeMarks(context, scale, ox, oy, width, height, drawn) {
  const taken = [];
  const marks = [];
  if (mapState.queryAt) {
    marks.push({ kind: "query", text: shorten(mapState.query), at: mapState.queryAt,
                 colour: mapState.colours.accent });
  }
  for (const placed of mapState.words) {
    if (placed.at) {
      marks.push({ kind: "word", text: placed.word, at: placed.at,
                   colour: mapState.colours.marker });
    }
  }
  context.font = `700 14px ${MAP_FONT}`;
  for (const mark of marks) {
    const sx = mark.at.x * scale + ox;
    const sy = mark.at.y * scale + oy;
    Object.assign(mark, { sx, sy });
    mark.away = sx < -20 || sx > width + 20 || sy < -20 || sy > height + 20;
    if (mark.away) continue;
    // right, left, above or below
    const w = textWidth(context, mark.text);
    const r = MARK_RADIUS;
    const sides = [[sx + r + 13, sy], [sx - r - 13 - w, sy], [sx - w / 2, sy - r - 20],
                   [sx - w / 2, sy + r + 20]];
    const boxes = sides.map(([tx, ty]) => ({ x: tx - 3, y: ty - 12, w: w + 6, h: 24 }));
    const free = boxes.findIndex((box) => box.x >= 0 && box.x + box.w <= width &&
      !taken.some((other) => overlaps(box, other)));
    mark.box = boxes[Math.max(0, free)];
    taken.push(mark.box, { x: sx - r, y: sy - r, w: 2 * r, h: 2 * r });
    drawn.marks.push({ kind: mark.kind, text: mark.text, x: sx, y: sy });
    if (mark.kind === "word") drawn.labels.push({ text: mark.text, word: true, ...mark.box });
  }
  return { marks, taken };
}

const MARK_RADIUS = 13;

function paintMarks(context, marks, width, height) {
  context.textAlign = "left";
  context.textBaseline = "middle";
  context.font = `700 14px ${MAP_FONT}`;
  context.lineCap = "round";
  const r = MARK_RADIUS;
  for (const { kind, text, colour, sx, sy, away, box } of marks) {
    if (away) {
      drawOffScreen(context, sx, sy, width, height, colour);
      continue;
    }
    for (const [line, stroke] of [[6, mapState.colours.ground], [2.5, colour]]) {
      context.lineWidth = line;
      context.strokeStyle = stroke;
      context.beginPath();
      context.arc(sx, sy, r, 0, 2 * Math.PI);
      if (kind === "query") {
        // a cross outside the ring only: the results at its middle stay in sight
        for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
          context.moveTo(sx + dx * (r + 3), sy + dy * (r + 3));
          context.lineTo(sx + dx * (r + 10), sy + dy * (r + 10));
        }
      }
      context.stroke();
    }
    if (kind === "word") {
      context.beginPath();
      context.arc(sx, sy, 5, 0, 2 * Math.PI);
      context.fillStyle = colour;
      context.fill();
    }
    haloText(context, text, box.x + 3, box.y + 12, colour);
  }
}

// A mark out of view: a small arrow at the edge, towards it
function drawOffScreen(context, sx, sy, width, height, colour) {
  const cx = width / 2;
  const cy = height / 2;
  const angle = Math.atan2(sy - cy, sx - cx);
  const reach = Math.min((width / 2 - 14) / Math.abs(Math.cos(angle) || 1e-9),
                         (height / 2 - 14) / Math.abs(Math.sin(angle) || 1e-9));
  const ex = cx + Math.cos(angle) * reach;
  const ey = cy + Math.sin(angle) * reach;
  context.save();
  context.translate(ex, ey);
  context.rotate(angle);
  context.beginPath();
  context.moveTo(9, 0);
  context.lineTo(-6, -7);
  context.lineTo(-6, 7);
  context.closePath();
  context.fillStyle = colour;
  context.strokeStyle = mapState.colours.ground;
  context.lineWidth = 2;
  context.stroke();
  context.fill();
  context.restore();
}

// Where Enter opens an image, when keys drive the map
function drawCentre(context) {
  const cx = mapState.width / 2;
  const cy = mapState.height / 2;
  for (const [line, colour] of [[4, mapState.colours.ground], [1.5, mapState.colours.text]]) {
    context.lineWidth = line;
    context.strokeStyle = colour;
    context.beginPath();
    context.moveTo(cx - 10, cy);
    context.lineTo(cx + 10, cy);
    context.moveTo(cx, cy - 10);
    context.lineTo(cx, cy + 10);
    context.stroke();
  }
}

const shorten = (text) => (text.length > 28 ? `${text.slice(0, 27)}…` : text);

// What the frame drew, on the canvas's attributes (the tests and the benchmark read them);
// written only when they change
function reportDrawn(canvas, drawn) {
  const said = {
    drawn: String(drawn.visible), labels: String(drawn.labels.length),
    highlighted: String(drawn.highlighted), thumbs: String(drawn.thumbs),
    marks: String(drawn.marks.length), level: String(drawn.level),
    mode: drawn.mode,
  };
  for (const [name, value] of Object.entries(said)) {
    if (canvas.dataset[name] !== value) canvas.dataset[name] = value;
  }
}

// ------------------------------------------------------------------ what is where

function onCanvas(event) {
  const box = ui.mapCanvas.getBoundingClientRect();
  return { x: event.clientX - box.left, y: event.clientY - box.top };
}

// The image drawn at (px, py): the topmost thumbnail or result there, else the nearest dot in
// reach; -1 for none
function imageAt(px, py) {
  const data = mapState.data;
  if (!data) return -1;
  const hits = mapState.drawn.hits;
  for (let k = hits.length - 1; k >= 0; k--) {
    const hit = hits[k];
    if (Math.abs(px - hit.x) <= hit.half && Math.abs(py - hit.y) <= hit.half) return hit.i;
  }
  if (mapState.drawn.mode === "thumbs") return -1;
  const { scale, ox, oy } = mapTransform();
  const reach = Math.max(8, mapState.drawn.size);
  let best = -1;
  let nearest = reach * reach;
  for (let k = 0; k < mapState.drawn.visible; k++) {
    const i = data.visible[k];
    const dx = data.x[i] * scale + ox - px;
    const dy = data.y[i] * scale + oy - py;
    const d = dx * dx + dy * dy;
    if (d <= nearest) {
      nearest = d;
      best = i;
    }
  }
  return best;
}

function labelAt(px, py) {
  const found = mapState.drawn.labels.find((box) =>
    px >= box.x && px <= box.x + box.w && py >= box.y && py <= box.y + box.h);
  return found ? found.text : null;
}

// The region of the labelled level that (px, py) lies in: the one with the nearest centre, if
// the point is within its circle widened by a picture's side or MAP_REGION_REACH px, whichever
// is more (a region of one image has no radius, and its picture covers its centre); null
// between regions
function regionAt(px, py) {
  const data = mapState.data;
  if (!data) return null;
  const { scale, ox, oy } = mapTransform();
  let best = null;
  let nearest = Infinity;
  for (const region of data.levels[labelLevel(data)]) {
    const d = Math.hypot(region.x * scale + ox - px, region.y * scale + oy - py);
    if (d < nearest) {
      nearest = d;
      best = region;
    }
  }
  const margin = Math.max(MAP_REGION_REACH, mapState.drawn.size || 0);
  return best && nearest <= best.radius * scale + margin ? best : null;
}

// What a click at (px, py) does: a word drawn there runs it; else an image there opens; else
// the region there runs its word
function targetAt(px, py) {
  const label = labelAt(px, py);
  if (label) return { kind: "label", text: label };
  const row = imageAt(px, py);
  if (row >= 0) return { kind: "image", row, id: mapState.data.ids[row] };
  const region = regionAt(px, py);
  return region ? { kind: "region", text: region.label } : null;
}

// The preview of an image of the map: one the grid has not shown comes with no record; the
// preview starts from its thumbnail and fills in from its describe reply (preview.js)
function openFromMap(row) {
  const data = mapState.data;
  const id = data.ids[row];
  if (!state.items.has(id)) {
    const thumb = data.thumbs ? data.thumbs[row] : null;
    state.items.set(id, { id, url: `/images/${id}`, thumb, preview: thumb || `/images/${id}`,
                          caption: null, score: null, fromMap: true });
  }
  openPreview(id);
}

// Enter on the map: the image nearest its centre, if one is near
function openAtCentre() {
  const data = mapState.data;
  if (!data) return;
  const cx = mapState.width / 2;
  const cy = mapState.height / 2;
  const { scale, ox, oy } = mapTransform();
  let best = -1;
  let nearest = 60 * 60;
  for (let k = 0; k < mapState.drawn.visible; k++) {
    const i = data.visible[k];
    const d = (data.x[i] * scale + ox - cx) ** 2 + (data.y[i] * scale + oy - cy) ** 2;
    if (d < nearest) {
      nearest = d;
      best = i;
    }
  }
  if (best >= 0) openFromMap(best);
  else setMapStatus("No image at the centre: move the map onto one");
}

// ------------------------------------------------------------------ words around the canvas

function setMapStatus(text) {
  ui.mapStatus.textContent = text;
}

// The canvas's name says what it shows; the status what was done last
function describeMap() {
  const data = mapState.data;
  if (!data) return;
  const regions = data.levels[0].map((r) => [r.label, ...(r.also || [])].join(" "));
  const results = mapState.results.length ? `; the results of ${mapState.query} are ` +
    "highlighted, a ring marks the query" : "";
  ui.mapCanvas.setAttribute("aria-label", `Map of the gallery: ${data.count.toLocaleString()} ` +
    `images${regions.length ? ` in regions ${regions.join(", ")}` : ""}${results}`);
  const touch = matchMedia("(hover: none)").matches;
  const how = touch
    ? "drag to move, pinch to zoom, tap an image to see it, a region to search for it"
    : "drag to move, scroll to zoom, click an image to see it, a word or a region to search " +
      "for it";
  setMapStatus(data.count ? `${data.count.toLocaleString()} images · ${how}` +
    (mapState.results.length ? ` · ${mapState.results.length} results of ` +
      `“${shorten(mapState.query)}” highlighted` : "") : "The gallery is empty");
}

// The text alternative: the coarse regions as buttons that search for their word
function renderMapLegend() {
  const regions = mapState.data ? mapState.data.levels[0] : [];
  ui.mapRegions.replaceChildren(...regions.map((region, index) => el("li", {},
    el("button", {
      type: "button", class: "chip", tabindex: index ? "-1" : "0",
      dataset: { label: region.label },
      title: `${region.count.toLocaleString()} images` +
        `${region.also && region.also.length ? `, also ${region.also.join(", ")}` : ""}: ` +
        `search for ${region.label}`,
      onclick: () => setQuery(region.label),
    }, region.label, el("span", { class: "count" }, region.count.toLocaleString())))));
  renderMapWords();
}

function renderMapWords() {
  ui.mapWords.replaceChildren(...mapState.words.map((placed) => el("li", {},
    el("button", {
      type: "button", class: "chip placed", dataset: { word: placed.word },
      title: placed.at ? `show where ${placed.word} is` : `${placed.word} is not on the map`,
      onclick: () => showPlaced(placed),
    }, placed.word))));
  ui.mapWords.hidden = mapState.words.length === 0;
  ui.mapClear.hidden = mapState.words.length === 0;
}

// A placed word's chip brings its mark to the centre
function showPlaced(placed) {
  if (!placed.at) return;
  mapState.view.cx = placed.at.x;
  mapState.view.cy = placed.at.y;
  keepInView();
  requestDraw();
}

// ------------------------------------------------------------------ input

ui.mapToggle.addEventListener("click", () => toggleMap());
ui.duplicates.addEventListener("click", () => toggleMap(false));  // another view of the grid
ui.mapZoomIn.addEventListener("click", () => zoomMap(MAP_STEP));
ui.mapZoomOut.addEventListener("click", () => zoomMap(1 / MAP_STEP));
ui.mapReset.addEventListener("click", resetView);
ui.mapClear.addEventListener("click", clearWords);
ui.mapPlace.addEventListener("submit", (event) => {
  event.preventDefault();
  placeWord(ui.mapWord.value);
});

ui.mapCanvas.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  mapState.keyboard = false;
  try {
    ui.mapCanvas.setPointerCapture(event.pointerId);
  } catch {
    // a pointer the browser does not track (a script's): the drag works without
  }
  mapState.pointers.set(event.pointerId, onCanvas(event));
  if (mapState.pointers.size === 1) {
    mapState.travel = 0;
    mapState.dragged = false;
  } else {
    mapState.dragged = true;  // a second finger: a pinch, not a tap
  }
  ui.mapCanvas.classList.add("dragging");
});

ui.mapCanvas.addEventListener("pointermove", (event) => {
  const last = mapState.pointers.get(event.pointerId);
  const at = onCanvas(event);
  if (!last) {
    // hovering: what is under the pointer can be clicked
    const over = mapState.data && targetAt(at.x, at.y);
    ui.mapCanvas.classList.toggle("over", Boolean(over));
    return;
  }
  if (mapState.pointers.size === 1) {
    panMap(at.x - last.x, at.y - last.y);
    mapState.travel += Math.abs(at.x - last.x) + Math.abs(at.y - last.y);
    if (mapState.travel > MAP_TAP) mapState.dragged = true;
  } else {
    // a pinch: the two fingers' midpoint moves the map, their spread zooms it
    const other = [...mapState.pointers].find(([id]) => id !== event.pointerId)[1];
    const before = Math.hypot(last.x - other.x, last.y - other.y);
    const after = Math.hypot(at.x - other.x, at.y - other.y);
    const mx = (at.x + other.x) / 2;
    const my = (at.y + other.y) / 2;
    panMap(mx - (last.x + other.x) / 2, my - (last.y + other.y) / 2);
    if (before > 0 && after > 0) zoomMap(after / before, mx, my);
  }
  mapState.pointers.set(event.pointerId, at);
});

function pointerGone(event) {
  mapState.pointers.delete(event.pointerId);
  if (!mapState.pointers.size) ui.mapCanvas.classList.remove("dragging");
}
ui.mapCanvas.addEventListener("pointerup", pointerGone);
ui.mapCanvas.addEventListener("pointercancel", pointerGone);

ui.mapCanvas.addEventListener("click", (event) => {
  if (mapState.dragged) {
    mapState.dragged = false;
    return;
  }
  const at = onCanvas(event);
  const target = mapState.data ? targetAt(at.x, at.y) : null;
  if (!target) return;
  if (target.kind === "image") openFromMap(target.row);
  else setQuery(target.text, `Query: ${target.text} (from the map)`);
});

ui.mapCanvas.addEventListener("wheel", (event) => {
  event.preventDefault();  // the page does not scroll under the map
  const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
  const at = onCanvas(event);
  zoomMap(Math.exp(-event.deltaY * unit * 0.0015), at.x, at.y);
}, { passive: false });

ui.mapCanvas.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const step = event.shiftKey ? 3 * MAP_PAN : MAP_PAN;
  const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step],
                  ArrowDown: [0, -step] };
  if (moves[event.key]) panMap(...moves[event.key]);
  else if (event.key === "+" || event.key === "=") zoomMap(MAP_STEP);
  else if (event.key === "-" || event.key === "_") zoomMap(1 / MAP_STEP);
  else if (event.key === "0") resetView();
  else if (event.key === "Enter" || event.key === " ") openAtCentre();
  else return;
  event.preventDefault();
  mapState.keyboard = true;
  requestDraw();
});
ui.mapCanvas.addEventListener("blur", requestDraw);  // the centre's cross goes

// the regions' buttons: one Tab stop, arrows within
ui.mapRegions.addEventListener("keydown", (event) => {
  const chips = [...ui.mapRegions.querySelectorAll(".chip")];
  const step = arrowStep(event.key);
  if (!chips.length || step === undefined) return;
  event.preventDefault();
  roveAmong(chips, chips.indexOf(event.target) + step, true);
});

new ResizeObserver(() => {
  measureCanvas();
  requestDraw();
}).observe(ui.mapCanvas);
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  readColours();
  requestDraw();
});

// For tests and benchmarks, read only: where an image, a label or a mark is on the screen
// (the page's CSS px, as a click takes them), and what the last frame drew
window.wordpixMap = Object.freeze({
  screenOf(id) {
    const data = mapState.data;
    const row = data ? data.index.get(id) : undefined;
    if (row === undefined) return null;
    const { scale, ox, oy } = mapTransform();
    const box = ui.mapCanvas.getBoundingClientRect();
    return { x: box.left + data.x[row] * scale + ox, y: box.top + data.y[row] * scale + oy };
  },
  labels() {
    const box = ui.mapCanvas.getBoundingClientRect();
    return mapState.drawn.labels.map((label) => ({ text: label.text, word: Boolean(label.word),
      x: box.left + label.x + label.w / 2, y: box.top + label.y + label.h / 2 }));
  },
  // what a click at the page's (x, y) would do: { kind: "label" | "image" | "region", ... }
  targetAt(x, y) {
    const box = ui.mapCanvas.getBoundingClientRect();
    const target = mapState.data ? targetAt(x - box.left, y - box.top) : null;
    return target && { kind: target.kind, text: target.text, id: target.id };
  },
  marks() {
    const box = ui.mapCanvas.getBoundingClientRect();
    return mapState.drawn.marks.map((mark) => ({ kind: mark.kind, text: mark.text,
                                                 x: box.left + mark.x, y: box.top + mark.y }));
  },
  view() {
    return { ...mapState.view, count: mapState.data ? mapState.data.count : 0,
             drawn: mapState.drawn.visible, mode: mapState.drawn.mode, at: mapState.drawn.at,
             ms: mapState.drawn.ms, frames: mapState.frames };
  },
});
