// The connection: where the server is (?server=, the field at the top right), its access
// token and page key, the WebSocket and its reconnections, requests and the replies' dispatch,
// the hello.
"use strict";

// ------------------------------------------------------------------ where the server is

const params = new URLSearchParams(location.search);
const fromDisk = location.protocol === "file:";

function endpoints(address) {
  let secure = !fromDisk && location.protocol === "https:";
  let host = address.trim();
  const scheme = host.match(/^(https?|wss?):\/\/([^/]*)/i);
  if (scheme) {
    secure = /^(https|wss)$/i.test(scheme[1]);
    host = scheme[2];
  }
  host = host.replace(/\/.*$/, "") || "localhost:9998";
  return {
    address: host,
    ws: `${secure ? "wss" : "ws"}://${host}/ws`,
    http: `${secure ? "https" : "http"}://${host}/`,
  };
}

// ------------------------------------------------------------------ the access token

// A server that listens beyond loopback needs its access token (docs/server.md, Access). It
// comes in a link (#token=…), which the page takes out of the address at once, or is pasted
// into the notice shown when the server refuses the page. It is kept in this browser for that
// server and sent as ?token= with the WebSocket and every image: a browser sets no header on
// either, and no cookie reaches the server from the page opened from disk.
const TOKEN_KEY = "wordpix.token.";

function savedToken(address) {
  try {
    return localStorage.getItem(TOKEN_KEY + address) || "";
  } catch {
    return "";  // storage refused: the token lasts as long as the page
  }
}

function keepToken(token) {
  state.token = token;
  try {
    localStorage.setItem(TOKEN_KEY + state.server.address, token);
  } catch {
    // as above
  }
}

// ------------------------------------------------------------------ the page key

// Opened from disk, the page's Origin is "null", which any web site can give a sandboxed
// frame too, so a server on this machine also wants its page key (docs/server.md, The page
// from disk). The server writes it at start beside this file, in keys/<port>.js: a page from
// this folder can load it, no web site can. It is sent only to a server on loopback: a key
// is this machine's, and another machine must never learn it.
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

function keyPort(address) {
  const port = address.match(/:(\d+)$/);
  return port ? port[1] : "80";
}

// The key of the current server, loaded afresh (a restarted server has a new one); resolves
// once the script has loaded or failed (no server on that port: no file)
function loadPageKey() {
  const server = state.server;
  if (!fromDisk || !LOOPBACK.test(server.address)) return Promise.resolve();
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = `keys/${keyPort(server.address)}.js?${Date.now()}`;
    script.addEventListener("load", () => {
      script.remove();
      const keys = window.WORDPIX_KEYS || {};
      if (state.server === server) state.key = keys[keyPort(server.address)] || "";
      resolve();
    });
    script.addEventListener("error", () => {
      script.remove();
      resolve();
    });
    document.head.append(script);
  });
}

// The URL with the current server's token, if it has one (an <img> sends no Origin: it
// needs no page key, and no other site can read the picture it shows)
function withToken(url) {
  if (!state.token) return url;
  const full = new URL(url);
  full.searchParams.set("token", state.token);
  return full.href;
}

// ... and with the page key too: the WebSocket and fetch(), whose Origin the server checks
function withCredentials(url) {
  if (!state.key) return withToken(url);
  const full = new URL(withToken(url));
  full.searchParams.set("key", state.key);
  return full.href;
}

// #token=… leaves the address before anything else: not in the history, a bookmark or a link
// shared later
function takeTokenFromAddress() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (!hash.has("token")) return;
  const token = hash.get("token").trim();
  hash.delete("token");
  if (token) keepToken(token);
  const rest = hash.toString();
  try {
    history.replaceState(history.state, "",
      location.pathname + location.search + (rest ? `#${rest}` : ""));
  } catch {
    // some file:// setups refuse; record() rewrites the address without it too
  }
}

// A WebSocket refused before it opened: for want of the token, or the server is away. A
// browser does not say which; /health does (401: the token is wrong; "token": "required": it
// needs one).
async function accessProblem() {
  try {
    const response = await fetch(withCredentials(`${state.server.http}health`), { cache: "no-store" });
    if (response.status === 401) return "refused";
    const health = await response.json();
    if (health.page === "refused") return "page";
    return health.token === "required" ? "needed" : null;
  } catch {
    return null;  // not reachable (or not a wordpix server): retry as for any lost connection
  }
}

async function refusedOrAway() {
  const server = state.server;
  const problem = await accessProblem();
  if (state.server !== server || state.ws) return;  // another server or connection meanwhile
  if (problem) askForToken(problem);
  else retry();
}

// No retries while the notice is up: each would be one more wrong token from this address
function askForToken(problem) {
  const address = state.server.address;
  if (problem === "page") {
    pageRefused(address);
    return;
  }
  setStatus("locked", problem === "refused" ? "token refused" : "needs an access token");
  ui.accessText.textContent = problem === "refused"
    ? `${address} refused the access token this page had (a server makes a new one each ` +
      "time it starts, unless it was given one). Open the link it printed, or paste the token:"
    : `${address} needs its access token. Open the link it printed when it started ` +
      "(…/#token=…), or paste the token:";
  ui.access.hidden = false;
  show(ui.summary, "");
  ui.accessToken.focus();
}

// A page from disk without the key of the server (a copy of the page elsewhere than the
// server's web/ folder, or a server on another machine): only its own page can connect
function pageRefused(address) {
  setStatus("locked", "this page is refused");
  show(ui.summary, `${address} accepts the page it serves, and this page opened from its own ` +
    `folder on its machine: open http://${address}/ instead.`);
  state.retryTimer = setTimeout(connect, RETRY_MAX);  // the server may be restarted with it
}

// ------------------------------------------------------------------ requests

function send(message) {
  if (!state.connected) return false;
  state.ws.send(message instanceof ArrayBuffer ? message : JSON.stringify(message));
  return true;
}

// A new request id: replies to anything sent before are stale from now on
function claim() {
  state.latest = ++state.seq;
  clearTimeout(state.searchingTimer);
  return state.latest;
}

function request(message, id = claim()) {
  if (!send({ ...message, id })) {
    show(ui.summary, "waiting for the server…");
    return;
  }
  state.searchingTimer = setTimeout(() => {
    if (state.latest === id) show(ui.summary, "searching…");
  }, SEARCHING_AFTER);
}

// The query's photos go up first (each once per connection), then the query, its upload

// ------------------------------------------------------------------ replies

function onMessage(event) {
  if (typeof event.data !== "string") return;
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  // a word placed on the map has its own ids ("place-3"): its reply, or its error, is never
  // the grid's, nor stale for it
  if (isPlacing(message)) return onPlaced(message);
  switch (message.type) {
    case "hello": return onHello(message);
    case "results": return onResults(message);
    case "gallery": return onGallery(message);
    case "parsed": return onParsed(message);
    case "described": return onDescribed(message);
    case "duplicates": return onDuplicates(message);
    case "map": return onMap(message);
    case "uploaded": return onUploaded(message);
    case "error": return onError(message);
    default: return undefined;
  }
}

function onHello(hello) {
  state.hello = hello;
  const gallery = hello.gallery;
  const count = gallery ? gallery.count : 0;
  ui.galleryName.textContent = gallery ? `${gallery.title || gallery.name} · ` +
    `${count.toLocaleString()} image${count === 1 ? "" : "s"}` : "no gallery yet";
  document.body.dataset.fit = gallery && gallery.fit === "contain" ? "contain" : "cover";
  ui.q.maxLength = limit("query_chars", 500);
  readBox();  // the strip of a text typed or linked while away
  renderExamples(hello.examples || [], hello.gallery_examples || []);
  showMap(gallery);
  if (!gallery) {
    settle();
    ui.grid.replaceChildren();
    ui.setup.replaceChildren(el("p", {}, ...withCode(hello.setup || "")));
    ui.setup.hidden = false;
    show(ui.summary, "");
    return;
  }
  showFilters(gallery);
  showDuplicates(gallery);
  rerun();  // the last query again: uploads belonged to the old connection
}

function isStale(message) {
  return message.id !== state.latest;
}

// A reply to the latest request: it replaces every notice of the query before
function settle() {
  clearTimeout(state.searchingTimer);
  ui.grid.classList.remove("stale");
  for (const notice of [ui.error, ui.corrections, ui.suggestions, ui.missing, ui.setup]) {
    notice.hidden = true;
  }
}

// ------------------------------------------------------------------ the connection

function setStatus(stateName, text) {
  ui.connection.dataset.state = stateName;
  ui.connectionText.textContent = text;
}

async function connect() {
  clearTimeout(state.retryTimer);
  if (!state.everConnected) setStatus("connecting", "connecting…");
  else setStatus("disconnected", "disconnected — reconnecting…");
  const server = state.server;
  await loadPageKey();
  if (state.server !== server || state.ws) return;  // another server or connection meanwhile
  let ws;
  let opened = false;
  try {
    ws = new WebSocket(withCredentials(state.server.ws));
  } catch {
    setStatus("disconnected", `disconnected: cannot reach ${state.server.address}`);
    retry();
    return;
  }
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.addEventListener("open", () => {
    if (state.ws !== ws) return;
    opened = true;
    ui.access.hidden = true;
    state.connected = true;
    state.everConnected = true;
    state.retryDelay = RETRY_FIRST;
    setStatus("connected", "connected");
  });
  ws.addEventListener("message", (event) => {
    if (state.ws === ws) onMessage(event);
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    state.ws = null;
    disconnected();
    if (opened) retry();
    else refusedOrAway();
  });
}

// The server forgot this connection's uploads; what the grid shows may be out of date
function disconnected() {
  state.connected = false;
  for (const waiting of state.sending.splice(0)) waiting.reject(new Error("not connected"));
  state.onServer.clear();
  ui.grid.classList.add("stale");
}

function retry() {
  const delay = state.retryDelay;
  state.retryDelay = Math.min(RETRY_MAX, delay * 2);
  setStatus("disconnected",
    `disconnected — retrying in ${(delay / 1000).toFixed(delay < 1000 ? 1 : 0)} s`);
  state.retryTimer = setTimeout(connect, delay);
}

// Another server is another gallery: [IMG_n] there is another picture, so those terms leave
// the query, the gallery's chips go, and the results stay dimmed until the new server answers
function changeServer(address) {
  useServer(address);
  const next = new URLSearchParams(location.search);
  next.set("server", state.server.address);
  try {
    history.replaceState(history.state, "", `${location.pathname}?${next}${location.hash}`);
  } catch {
    // not essential
  }
  const terms = currentTerms() || [];
  const dropped = terms.filter((t) => t.kind === "image").map((t) => t.text);
  if (dropped.length) {
    const kept = terms.filter((t) => t.kind !== "image");
    ui.q.value = formatQuery(kept);
    state.parsed = { text: ui.q.value, terms: kept };
    state.view = { mode: ui.q.value ? "query" : "browse", text: ui.q.value, k: PAGE, after: 0 };
    record(ui.q.value, false);
    toast(`Left out ${dropped.join(", ")}: images of the other gallery`, false);
  }
  reconnect();
}

function useServer(address) {
  state.server = endpoints(address);
  state.token = savedToken(state.server.address);
  state.key = "";
  ui.access.hidden = true;
}

// Drop the connection and what came with it (the gallery's name, chips and words), dim the
// results, and connect to state.server
function reconnect() {
  ui.serverAddress.value = state.server.address;
  state.hello = null;
  state.understood = null;
  renderTerms();
  renderExamples([], []);
  renderNearest([]);
  forgetMap();
  ui.galleryName.textContent = "";
  show(ui.summary, `waiting for ${state.server.address}…`);
  const old = state.ws;
  state.ws = null;
  disconnected();
  state.everConnected = false;
  state.retryDelay = RETRY_FIRST;
  if (old) old.close();
  connect();
}

ui.serverForm.addEventListener("submit", (event) => {
  event.preventDefault();
  changeServer(ui.serverAddress.value);
});

ui.access.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.accessToken.value.trim();
  if (!token) return;
  keepToken(token);
  ui.accessToken.value = "";
  ui.access.hidden = true;
  state.retryDelay = RETRY_FIRST;
  connect();
});
