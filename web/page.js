// wordpix search page: plain JavaScript in a few classic scripts, no build step, nothing
// fetched but the query server; it works from file:// too. index.html loads them in order:
//   page.js        what every part shares: the settings, the page's elements (ui), its state,
//                  the small DOM helpers
//   connection.js  where the server is, its access token and page key, the WebSocket, the hello
//   terms.js       the query box and its terms strip (as the server reads the text), the notices
//   grid.js        the results (with the relevance line) and the nearest words
//   filters.js     when and where: a date range, a folder, the order of results
//   duplicates.js  the gallery's groups of near-identical photos
//   map.js         every image on a map of the gallery (a canvas), the query's place on it
//   explain.js     what each term of a query did, and the term each result matches best
//   preview.js     one image large, with what the model sees in it
//   history.js     each query an entry of the browser's history; undo; the toast
//   photos.js      the user's photos: uploads, kept in IndexedDB, dropped and pasted
//   start.js       the start, once every part is defined
// Classic scripts share one global scope: each part's functions are called by the others by name,
// and none runs anything at load but its event listeners (start.js starts the page).
//
// The text box holds the real query (e.g. `dog+2*[IMG_5]`); the page has no parser of its own:
// the terms strip shows the server's reading of that text (the `parse` message). Every query run
// is an entry in the browser's history, so Back, Forward and Ctrl+Z walk the refinements and the
// address is a link to the query. A click on an image opens its preview; every change made
// through the page builds the query text from its terms and runs it again.
"use strict";

const PAGE = 24;                 // results asked for at a time
const DUPLICATE_GROUPS = 12;     // near-duplicate groups asked for at a time
const MAX_RESULTS = 200;         // the server's default limit; hello.limits overrides it
const MAX_UPLOADS = 16;          // uploads a connection keeps; hello.limits overrides it
const RETRY_FIRST = 500;         // reconnect backoff, ms: 0.5 s doubling up to 5 s
const RETRY_MAX = 5000;
const SEARCHING_AFTER = 150;     // say "searching…" only if a reply takes longer than this
const TOAST_FOR = 6000;          // ms a "Query: … · Undo" note stays
const KEPT_PHOTOS = 50;          // photos this browser keeps for reloads and links (IndexedDB)

const $ = (id) => document.getElementById(id);
const ui = {
  q: $("q"), queryForm: $("query-form"), pick: $("pick"), file: $("file"), terms: $("terms"),
  helpToggle: $("help-toggle"), help: $("help"), examples: $("examples"), grid: $("grid"),
  more: $("more"), results: $("results"), summary: $("summary"), setup: $("setup"),
  missing: $("missing"), corrections: $("corrections"), suggestions: $("suggestions"),
  error: $("error"), nearest: $("nearest"), nearestHint: $("nearest-hint"),
  connection: $("connection"), connectionText: $("connection-text"),
  galleryName: $("gallery-name"), serverForm: $("server-form"),
  serverAddress: $("server-address"), drop: $("drop"), toast: $("toast"), skip: $("skip"),
  preview: $("preview"), previewImage: $("preview-image"), previewTitle: $("preview-title"),
  previewScore: $("preview-score"), previewCaption: $("preview-caption"),
  previewWords: $("preview-words"), previewPicture: $("preview-picture"),
  previewAdd: $("preview-add"), previewSubtract: $("preview-subtract"),
  previewLike: $("preview-like"), previewOpen: $("preview-open"),
  previewClose: $("preview-close"), previewPrev: $("preview-prev"),
  previewNext: $("preview-next"), access: $("access"), accessText: $("access-text"),
  accessToken: $("access-token"), filters: $("filters"),
  filterForm: $("filter-form"), filterFrom: $("filter-from"),
  filterTo: $("filter-to"), filterFolder: $("filter-folder"), folderList: $("folder-list"),
  filterOrder: $("filter-order"),
  filterClear: $("filter-clear"), duplicates: $("duplicates"), explain: $("explain"),
  explainTerms: $("explain-terms"), mapToggle: $("map-toggle"), map: $("map"),
  mapCanvas: $("map-canvas"), mapStatus: $("map-status"), mapRegions: $("map-regions"),
  mapWords: $("map-words"), mapZoomIn: $("map-zoom-in"), mapZoomOut: $("map-zoom-out"),
  mapReset: $("map-reset"), mapPlace: $("map-place"), mapWord: $("map-word"),
  mapClear: $("map-clear"),
};

// ------------------------------------------------------------------ state

const state = {
  server: null,            // { address, ws, http }: start.js picks it
  token: "",               // the server's access token, if it needs one and the page has it
  key: "",                 // the page key, from disk, of a server on this machine
  ws: null,
  connected: false,
  everConnected: false,
  retryDelay: RETRY_FIRST,
  retryTimer: null,
  hello: null,
  seq: 0,                  // request ids, incrementing
  latest: 0,               // the id of the one query whose reply is wanted; others are stale
  back: new Map(),         // for the latest query: upload number on the server -> in the box
  view: { mode: "browse", text: "", k: PAGE, after: 0 },
  shown: 0,                // tiles in the grid
  items: new Map(),        // image id -> its result, for the preview
  parsed: { text: "", terms: [] },  // the server's reading of the box's text (terms.js)
  parsing: 0,              // the id of the parse request whose reply is wanted
  understood: null,        // { text, terms } of the last results, for the terms strip
  // [UPLOAD_n] in the box names the page's own photo n, the same across reconnections,
  // reloads and links; the server numbers uploads per connection, so the page translates
  photos: new Map(),       // n -> { key, blob, url } (blob null: not in this browser)
  onServer: new Map(),     // photo key -> Promise of its number on this connection, oldest first
  sending: [],             // photos sent, in order, awaiting "uploaded": { resolve, reject }
  replacing: null,         // the photo number the next picked file stands in for
  searchingTimer: null,
  scrollOnReply: false,    // a new query: show the top of its results
  gridIndex: 0,            // the tile Tab reaches (one tab stop for the grid; arrows move)
  previewId: null,         // the image in the preview
  describing: null,        // the id of the describe request the preview waits for
  toastTimer: null,
};

// ------------------------------------------------------------------ small DOM helpers

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const imageUrl = (url) => withToken(new URL(url, state.server.http).href);
// a gallery image by id: its thumbnail where the page has seen it, else the file
const galleryUrl = (id) => imageUrl(state.items.get(id)?.thumb || `/images/${id}`);

function show(node, text) {
  node.hidden = !text;
  if (typeof text === "string") node.textContent = text;
}

// Text with `code` in backticks, as the server writes commands
const withCode = (text) =>
  text.split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));

function limit(name, fallback) {
  return (state.hello && state.hello.limits && state.hello.limits[name]) || fallback;
}
