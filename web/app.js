// wordpix search page: plain JavaScript, no build step, nothing fetched but the query server.
//
// The text box holds the real query (e.g. `dog+2*[IMG_5]`); the terms strip under it is always
// derived from parsing that text. Every query run is an entry in the browser's history, so Back,
// Forward and Ctrl+Z walk the refinements and the address is a link to the query. A click on an
// image opens its preview (whole picture, caption, nearest words, add / subtract / more like
// this); every change made through the page rewrites the text and runs it again.
"use strict";

(() => {
  const PAGE = 24;                 // results asked for at a time
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
    accessToken: $("access-token"),
  };

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

  // ------------------------------------------------------------------ state

  const state = {
    server: endpoints(params.get("server") || (fromDisk ? "localhost:9998" : location.host)),
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

  // ------------------------------------------------------------------ the query language

  // As server/serve/query.py reads it (docs/protocol.md); tests/query_cases.json holds both to
  // the same cases. The page shows the terms of a half-typed query (`dog+`) and leaves refusing
  // it to the server, so parseQuery never throws: it returns the terms it read and why the server
  // would refuse the query (null when it would not).

  const MAX_WEIGHT = 100;
  const WEIGHT = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*\*/;
  const IMAGE = /^\[\s*(IMG|UPLOAD)_(\d{1,9})\s*\]$/i;
  const UPLOAD_REF = /\[\s*UPLOAD_(\d{1,9})\s*\]/gi;
  const NOT_WORD = /[^\p{L}\p{N}]+/gu;  // as server/text.py: anything but a letter or a digit
  // server/text.py's STOP_WORDS (the web test checks that they are the same)
  const STOP_WORDS = new Set(`
    a about above after again against ain all am an and any are aren as at be because been before
    being below between both but by can couldn d did didn do does doesn doing don down during each
    few for from further had hadn has hasn have haven having he her here hers herself him himself
    his how i if in into is isn it its itself just ll m ma me mightn more most mustn my myself
    needn no nor not now o of off on once only or other our ours ourselves out over own re s same
    shan she should shouldn so some such t than that the their theirs them themselves then there
    these they this those through to too under until up ve very was wasn we were weren what when
    where which while who whom why will with won wouldn y you your yours yourself yourselves
  `.trim().split(/\s+/));

  // Words cleaned as server/text.py's tokenize does, in the same order: split, lower, drop.
  function tokenize(text) {
    return text.replace(NOT_WORD, " ").toLowerCase().split(" ")
      .filter((word) => word && !STOP_WORDS.has(word));
  }

  // -> { terms, error }: the terms read, one for each piece of text between signs but empty ones
  function parseQuery(text) {
    const pieces = splitQuery(text);
    const terms = pieces.filter((p) => p.text.trim()).map((p) => makeTerm(p.sign, p.text));
    return { terms, error: queryError(text, pieces, terms) };
  }

  // The checks query.py's parse makes, in its order, so that the first problem is the same.
  function queryError(text, pieces, terms) {
    const length = [...text].length;  // in characters as Python counts them, not UTF-16 units
    const longest = limit("query_chars", 500);
    if (length > longest) {
      return `the query is too long (${length} characters, at most ${longest})`;
    }
    if (!text.trim()) return "the query is empty: type words like beach+sunrise";
    const missing = pieces.findIndex((p) => !p.text.trim());
    if (missing >= 0) {
      const next = pieces[missing + 1];  // the sign after the gap, if any
      if (!next) return "a term is missing at the end";
      return `a term is missing before the '${next.sign > 0 ? "+" : "-"}'`;
    }
    const most = limit("terms", 32);
    if (pieces.length > most) return `too many terms (${pieces.length}, at most ${most})`;
    const bad = terms.find((term) => term.error);
    if (bad) return bad.error;
    if (!terms.some((term) => term.sign > 0)) {
      return "the query needs at least one term to add, not only ones to subtract";
    }
    return null;
  }

  // [{ sign, text }]: `+` and `-` outside [...] separate terms; a leading sign is allowed.
  function splitQuery(text) {
    const pieces = [];
    const lead = text.match(/^\s*([+-]?)/);
    let sign = lead[1] === "-" ? -1 : 1;
    let start = lead[0].length;
    let depth = 0;
    for (let at = start; at <= text.length; at++) {
      const char = at < text.length ? text[at] : null;
      if (char === "[") depth += 1;
      else if (char === "]") depth = Math.max(0, depth - 1);
      else if (char === null || ((char === "+" || char === "-") && depth === 0)) {
        pieces.push({ sign, text: text.slice(start, at) });
        if (char !== null) {
          sign = char === "+" ? 1 : -1;
          start = at + 1;
        }
      }
    }
    return pieces;
  }

  function makeTerm(sign, piece) {
    // a piece that is no term is kept as typed (with its `error`), so that edits made through
    // the page print it back unchanged instead of dropping what the user wrote
    const invalid = (error) =>
      ({ sign, weight: 1, kind: "words", text: piece.trim(), words: [], error });
    let weight = 1;
    let body = piece;
    const match = piece.match(WEIGHT);
    if (match) {
      weight = Number(match[1]);
      if (!(weight > 0 && weight <= MAX_WEIGHT)) {
        return invalid(`the weight ${match[1]} must be above 0 and at most ${MAX_WEIGHT}`);
      }
      body = piece.slice(match[0].length);
    }
    body = body.trim();
    if (!body) return invalid(`the weight ${formatWeight(weight)}* has no term after it`);
    const image = body.match(IMAGE);
    if (image) {
      const kind = image[1].toUpperCase() === "IMG" ? "image" : "upload";
      const ref = Number(image[2]);
      return { sign, weight, kind, ref, text: `[${image[1].toUpperCase()}_${ref}]` };
    }
    if (/[[\]]/.test(body)) {
      return invalid(`'${body}' is not an image reference: write [IMG_<id>] or [UPLOAD_<n>]`);
    }
    if (body.includes("*")) {
      return invalid(`'${body}': a weight goes before its term, as in 3*park`);
    }
    const words = tokenize(body);
    if (!words.length) {
      return invalid(/[\p{L}\p{N}]/u.test(body)
        ? `'${body}' has only common words (like 'the' or 'a') that carry no meaning here`
        : `'${body}' has no words in it`);
    }
    return { sign, weight, kind: "words", text: body, words };
  }

  // The shortest decimal that reads back as the weight, as query.py prints it: never in
  // exponent form (String gives `1e-7` below 1e-6, which would not parse).
  function formatWeight(weight) {
    const text = String(weight);
    const tiny = text.match(/^(\d)(?:\.(\d+))?e-(\d+)$/);
    return tiny ? `0.${"0".repeat(Number(tiny[3]) - 1)}${tiny[1]}${tiny[2] || ""}` : text;
  }

  // A term as query.py's format_terms prints it: cleaned words, `[IMG_12]`; a piece that is no
  // term as it was typed.
  const termBody = (term) =>
    term.kind === "words" && term.words.length ? term.words.join(" ") : term.text;

  function formatQuery(terms) {
    return terms.map((term, index) => {
      const sign = term.sign < 0 ? "-" : (index ? "+" : "");
      const weight = term.weight === 1 ? "" : `${formatWeight(term.weight)}*`;
      return sign + weight + termBody(term);
    }).join("");
  }

  // For tests/e2e/test_web.py: the page's own reading of the language, checked against
  // tests/query_cases.json.
  window.wordpixQuery = { parse: parseQuery, format: formatQuery, stopWords: STOP_WORDS };

  const sameTerm = (a, b) => a.kind === b.kind && termBody(a) === termBody(b);

  // Add `delta` (+1 or -1) to a term (its text, as `[IMG_5]`): a new term, or more (or less) of
  // one already there.
  function addToQuery(text, delta) {
    const term = makeTerm(1, text);
    const { terms } = parseQuery(ui.q.value);
    const found = terms.find((t) => sameTerm(t, term));
    if (!found) {
      terms.push({ ...term, sign: delta > 0 ? 1 : -1 });
    } else {
      // rounded: sums of typed decimals pick up float noise (2.675 - 1 = 1.6749999999999998)
      const signed = Math.round((found.sign * found.weight + delta) * 1e9) / 1e9;
      if (signed === 0) terms.splice(terms.indexOf(found), 1);
      else Object.assign(found, { sign: Math.sign(signed), weight: Math.abs(signed) });
    }
    const query = formatQuery(terms);
    const verb = delta > 0 ? "Added" : "Subtracted";
    setQuery(query, `${verb} ${term.text}: ${query || "the gallery"}`);
  }

  function editTerm(index, change) {
    const { terms } = parseQuery(ui.q.value);
    if (!terms[index]) return;
    if (change(terms[index], terms) === "remove") terms.splice(index, 1);
    setQuery(formatQuery(terms));
  }

  // `from` replaced by `to` where it stands as a whole word (a correction, a suggestion)
  function replaceWord(text, from, to) {
    const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return text.replace(new RegExp(`(^|[^\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "giu"),
      `$1${to}`);
  }

  const heavier = (w) => Math.min(100, w >= 1 ? Math.floor(w) + 1 : Math.min(1, w * 2));
  const lighter = (w) => (w > 1 ? Math.ceil(w) - 1 : Math.max(0.125, w / 2));

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
  const galleryUrl = (id) => imageUrl(`/images/${id}`);

  function show(node, text) {
    node.hidden = !text;
    if (typeof text === "string") node.textContent = text;
  }

  // Text with `code` in backticks, as the server writes commands
  const withCode = (text) =>
    text.split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));

  // ------------------------------------------------------------------ the terms strip

  function renderTerms() {
    const { terms } = parseQuery(ui.q.value);
    const said = state.understood && state.understood.text === ui.q.value.trim()
      ? state.understood.terms : [];
    ui.terms.replaceChildren(...terms.map((term, index) => termItem(term, index, said[index])));
    ui.terms.hidden = terms.length === 0;
  }

  function termItem(term, index, said) {
    const label = term.text;
    const signName = term.sign < 0 ? "subtracted" : "added";
    return el("li", { class: `term ${term.kind}`, dataset: { sign: signName, index } },
      el("button", {
        type: "button", class: "sign", title: `${signName}: click to flip`,
        "aria-label": `${term.sign < 0 ? "add" : "subtract"} ${label} instead`,
        onclick: () => editTerm(index, (t) => { t.sign = -t.sign; }),
      }, term.sign < 0 ? "−" : "+"),
      termFace(term),
      el("span", { class: "label" }, label),
      englishMark(said),
      el("span", { class: "weight" },
        el("button", {
          type: "button", class: "lighter", "aria-label": `less weight on ${label}`,
          title: "less weight", onclick: () => editTerm(index, (t) => {
            t.weight = lighter(t.weight);
          }),
        }, "−"),
        el("span", { class: "value", title: "weight" }, `${formatWeight(term.weight)}×`),
        el("button", {
          type: "button", class: "heavier", "aria-label": `more weight on ${label}`,
          title: "more weight", onclick: () => editTerm(index, (t) => {
            t.weight = heavier(t.weight);
          }),
        }, "+")),
      el("button", {
        type: "button", class: "remove", "aria-label": `remove ${label}`, title: "remove",
        onclick: () => editTerm(index, () => "remove"),
      }, "×"));
  }

  function termFace(term) {
    if (term.kind === "image") {
      return el("img", { src: galleryUrl(term.ref), alt: "", title: term.text });
    }
    if (term.kind !== "upload") return null;
    const photo = state.photos.get(term.ref);
    if (photo && photo.url) {
      return el("img", { src: photo.url, alt: "", title: `${term.text} (your photo)` });
    }
    return el("button", {
      type: "button", class: "missing", title: "this browser does not have this photo",
      "aria-label": `add the photo ${term.text} again`, onclick: () => pickAgain(term.ref),
    }, "?");
  }

  // A reply may say that words came from general English rather than the captions (the open
  // vocabulary): shown quietly, as a mark with its explanation
  const marksEnglish = (understood) => Boolean(understood) &&
    understood.terms.some((t) => Array.isArray(t.sources) && t.sources.includes("english"));

  function englishMark(said) {

    const sources = said && Array.isArray(said.sources) ? said.sources : [];
    const english = (said ? said.used : []).filter((_, i) => sources[i] === "english");
    return english.length ? el("abbr", {
      class: "source", title: `general English, not from the captions: ${english.join(", ")}`,
    }, "en") : null;
  }

  // ------------------------------------------------------------------ history and undo

  // Put text in the box and run it as a new history entry: every change made through the page
  // goes through here, and says so at the bottom of the screen (far from the box on a phone),
  // with a way back.
  function setQuery(text, said) {
    ui.q.value = text;
    renderTerms();
    runQuery(text);
    toast(said || `Query: ${text || "the gallery"}`);
  }

  // The address of a query: #q=…, and for its photos the keys this browser keeps them under
  function addressOf(text) {
    const hash = new URLSearchParams();
    if (text) hash.set("q", text);
    const photos = uploadRefs(text).filter((n) => state.photos.has(n))
      .map((n) => `${n}:${state.photos.get(n).key}`);
    if (photos.length) hash.set("photos", photos.join(","));
    const rest = hash.toString();
    return location.pathname + location.search + (rest ? `#${rest}` : "");
  }

  function readAddress() {
    const hash = new URLSearchParams(location.hash.slice(1));
    return { q: hash.get("q") || params.get("q") || "", photos: hash.get("photos") || "" };
  }

  // A new entry (or the same one rewritten); `depth` counts the page's own entries before it
  function record(text, push) {
    const depth = history.state && Number.isInteger(history.state.depth) ? history.state.depth : 0;
    const same = history.state && history.state.q === text;
    try {
      if (push && !same) history.pushState({ q: text, depth: depth + 1 }, "", addressOf(text));
      else history.replaceState({ q: text, depth }, "", addressOf(text));
    } catch {
      // some file:// setups refuse; the page works the same without its address
    }
  }

  // Ctrl+Z and the notes' Undo: Back, within the page's own entries only
  function undo() {
    if (history.state && history.state.depth > 0) history.back();
    else toast("Nothing to undo", false);
  }

  window.addEventListener("popstate", (event) => {
    const address = readAddress();
    // an entry made on another server is that server's query: back to it
    const server = new URLSearchParams(location.search).get("server");
    if (server && endpoints(server).address !== state.server.address) {
      useServer(server);
      reconnect();
    }
    adoptPhotos(address.photos);
    const text = event.state && typeof event.state.q === "string" ? event.state.q : address.q;
    ui.q.value = text;
    renderTerms();
    runQuery(text, PAGE, false);
  });

  function toast(message, undoable = true) {
    ui.toast.replaceChildren(el("span", {}, message), undoable ? el("button", {
      type: "button", class: "link", onclick: () => { ui.toast.hidden = true; undo(); },
    }, "Undo") : "");
    ui.toast.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(() => { ui.toast.hidden = true; }, TOAST_FOR);
  }

  // ------------------------------------------------------------------ requests

  function send(message) {
    if (!state.connected) return false;
    state.ws.send(message instanceof ArrayBuffer ? message : JSON.stringify(message));
    return true;
  }

  function limit(name, fallback) {
    return (state.hello && state.hello.limits && state.hello.limits[name]) || fallback;
  }

  // Run the text (a new history entry unless `push` is false: reruns, More, Back).
  function runQuery(text, k = PAGE, push = true) {
    text = text.trim();
    record(text, push);
    state.scrollOnReply = k === PAGE;
    if (!text) {
      browse(0);
      return;
    }
    state.view = { mode: "query", text, k, after: 0 };
    document.body.classList.add("searched");  // on a phone the hints and chips fold away
    sendQuery(text, k, claim());
  }

  // The gallery in id order, a page at a time: `after` is the last id shown (0: from the start).
  function browse(after) {
    state.view = { mode: "browse", text: "", k: PAGE, after };
    if (!state.hello || state.hello.gallery) request({ type: "browse", after, k: PAGE });
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
  // numbers translated to the server's.
  async function sendQuery(text, k, id) {
    const numbers = uploadRefs(text);
    await Promise.all(numbers.map(loadPhoto));
    if (id !== state.latest) return;
    const missing = numbers.filter((n) => !state.photos.get(n).blob);
    if (missing.length) {
      showMissing(missing);
      return;
    }
    if (!state.connected) {
      request({ type: "query", q: text, k }, id);  // says it waits; the next hello reruns
      return;
    }
    let onServer;
    try {
      onServer = await Promise.all(numbers.map((n) => uploadPhoto(state.photos.get(n))));
    } catch (error) {
      if (id === state.latest && state.connected) failed(error.message);
      return;  // lost with the connection: the next hello reruns
    }
    if (id !== state.latest) return;
    state.back = new Map(onServer.map((m, i) => [m, numbers[i]]));
    const translated = text.replace(UPLOAD_REF, (whole, n) =>
      `[UPLOAD_${onServer[numbers.indexOf(Number(n))]}]`);
    request({ type: "query", q: translated, k }, id);
  }

  const uploadRefs = (text) =>
    [...new Set([...text.matchAll(UPLOAD_REF)].map((match) => Number(match[1])))];

  // The server's text (its canonical query) with the page's photo numbers
  const fromServer = (text) => text.replace(UPLOAD_REF, (whole, m) =>
    (state.back.has(Number(m)) ? `[UPLOAD_${state.back.get(Number(m))}]` : whole));

  function rerun() {
    const view = state.view;
    if (view.mode === "query") runQuery(view.text, view.k, false);
    else browse(0);
  }

  // ------------------------------------------------------------------ replies

  function onMessage(event) {
    if (typeof event.data !== "string") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case "hello": return onHello(message);
      case "results": return onResults(message);
      case "gallery": return onGallery(message);
      case "described": return onDescribed(message);
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
    renderExamples(hello.examples || [], hello.gallery_examples || []);
    if (!gallery) {
      settle();
      ui.grid.replaceChildren();
      ui.setup.replaceChildren(el("p", {}, ...withCode(hello.setup || "")));
      ui.setup.hidden = false;
      show(ui.summary, "");
      return;
    }
    rerun();  // the last query again: uploads belonged to the old connection
  }

  function renderExamples(examples, galleryWords) {
    const chip = (text, index) => el("li", {}, el("button", {
      type: "button", class: "chip", tabindex: index ? "-1" : "0", onclick: () => setQuery(text),
    }, text));
    const group = (title, items) => items.length ? el("div", { class: "chip-group" },
      el("span", { class: "muted" }, title),
      el("ul", { class: "chips", "aria-label": `${title} (arrow keys move)` }, items.map(chip)))
      : null;
    ui.examples.replaceChildren(...[
      group("Try", examples),
      group("In this gallery", galleryWords),
    ].filter(Boolean));
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

  function onResults(reply) {
    if (isStale(reply)) return;
    settle();
    const n = reply.results.length;
    const ms = Number(reply.ms).toFixed(1);
    show(ui.summary, `${n} image${n === 1 ? "" : "s"} for ${fromServer(reply.query)} · ${ms} ms`);
    renderCorrections(reply.corrections || []);
    renderSuggestions(reply.suggestions || []);
    const before = state.understood;
    state.understood = { text: state.view.text, terms: reply.terms || [] };
    if (marksEnglish(before) || marksEnglish(state.understood)) renderTerms();
    renderGrid(reply.results, false);
    ui.grid.dataset.q = state.view.text;  // what the grid shows (the tests wait on it)
    renderNearest(reply.nearest_words || []);
    ui.more.hidden = n < state.view.k || state.view.k >= limit("results", MAX_RESULTS);
  }

  function onGallery(reply) {
    if (isStale(reply)) return;
    settle();
    renderGrid(reply.results, reply.after > 0);
    ui.grid.dataset.q = "";
    renderNearest([]);
    show(ui.summary, `the gallery: ${state.shown} of ${reply.total.toLocaleString()} images`);
    state.view.after = reply.next;
    ui.more.hidden = reply.next === null;
  }

  function onError(reply) {
    if (reply.id === null || reply.id === undefined) {
      // a binary message (an upload) has no id: the oldest photo sent failed; whoever sent it
      // says so
      const oldest = state.sending.shift();
      if (oldest) oldest.reject(new Error(reply.error || "the photo could not be read"));
      return;
    }
    if (reply.id === state.describing) {
      ui.previewWords.replaceChildren(el("li", { class: "muted" }, reply.error));
      return;
    }
    if (isStale(reply)) return;
    settle();
    show(ui.summary, "");
    ui.grid.classList.add("stale");
    renderNearest([]);
    if (reply.code === "no_gallery") {
      ui.setup.replaceChildren(el("p", {}, ...withCode(reply.error)));
      ui.setup.hidden = false;
      return;
    }
    failed(reply.error || "the server could not answer", reply.word, reply.suggestions);
  }

  // An error, with its suggestions (for an unknown word) as links that put one in the query
  function failed(message, word, suggestions) {
    const offered = word && Array.isArray(suggestions) && suggestions.length;
    // the server's message ends by listing them; the links say it better
    const text = offered ? message.replace(/\s*Did you mean [^?]*\?\s*$/, "") : message;
    ui.error.replaceChildren(text, ...(offered ? [" Did you mean ",
      ...suggestionLinks(word, suggestions), "?"] : []));
    ui.error.hidden = false;
  }

  function suggestionLinks(word, alternatives) {
    return alternatives.flatMap((alternative, index) => [index ? ", " : "", el("button", {
      type: "button", class: "link suggestion", dataset: { word, alternative },
      onclick: () => setQuery(replaceWord(ui.q.value, word, alternative),
        `${word} → ${alternative}`),
    }, alternative)]);
  }

  // In results: words the server ran as they are, but that look like misspellings of others
  function renderSuggestions(suggestions) {
    const offered = suggestions.filter((s) => s.word && (s.alternatives || []).length);
    ui.suggestions.replaceChildren(...offered.flatMap((s, index) => [index ? " " : "",
      el("span", {}, `${s.word}: did you mean `), ...suggestionLinks(s.word, s.alternatives),
      "?"]));
    ui.suggestions.hidden = !offered.length;
  }

  function renderCorrections(corrections) {
    if (!corrections.length) {
      show(ui.corrections, "");
      return;
    }
    ui.corrections.replaceChildren(
      el("span", {}, "Spelling: "),
      ...corrections.flatMap(({ from, to }, index) => [
        index ? ", " : "",
        el("span", { class: "fix" }, el("s", {}, from), " → ", el("strong", {}, to)),
      ]),
      " ",
      el("button", {
        type: "button", class: "link", onclick: () => setQuery(corrections.reduce(
          (text, { from, to }) => replaceWord(text, from, to), ui.q.value)),
      }, "use it in the query"));
    ui.corrections.hidden = false;
  }

  // [[word, score]] as buttons (the clicks are handled by the list they are in)
  const wordItems = (words) => words.map(([word, score]) => el("li", {},
    el("button", { type: "button", class: "word", dataset: { word },
                   title: `add ${word} (Shift+click: subtract)` },
      el("span", {}, word), el("span", { class: "score" }, score.toFixed(2)))));

  function renderNearest(words) {
    ui.nearest.replaceChildren(...wordItems(words));
    ui.nearestHint.hidden = words.length > 0;
    document.body.classList.toggle("has-nearest", words.length > 0);
  }

  // ------------------------------------------------------------------ the grid

  function renderGrid(items, append) {
    const focused = !append && ui.grid.contains(document.activeElement)
      ? tiles().indexOf(document.activeElement) : -1;
    if (!append) state.items.clear();
    const start = append ? state.shown : 0;
    const made = items.map((item, offset) => {
      state.items.set(item.id, item);
      return el("li", {}, tileFor(item, start + offset));
    });
    if (append) ui.grid.append(...made);
    else ui.grid.replaceChildren(...made);
    state.shown = ui.grid.children.length;
    if (!append) state.gridIndex = Math.max(0, Math.min(focused, state.shown - 1));
    rove(state.gridIndex, focused >= 0);  // focus stays in the grid when it was there
    if (!append && state.scrollOnReply && ui.results.getBoundingClientRect().top < 0) {
      ui.results.scrollIntoView({ block: "start" });
    }
  }

  function tileFor(item, index) {
    const ref = `[IMG_${item.id}]`;
    const scored = typeof item.score === "number";
    return el("button", {
      type: "button", class: "tile", tabindex: "-1", dataset: { id: item.id, index },
      title: item.caption || ref,
      "aria-label": `${ref}${scored ? ` score ${item.score.toFixed(3)}` : ""}` +
        `${item.caption ? `: ${item.caption}` : ""}`,
    },
      el("img", { src: imageUrl(item.url), alt: "", loading: "lazy", draggable: "false" }),
      el("span", { class: "meta" },
        el("span", { class: "ref" }, ref),
        scored ? el("span", { class: "score" }, item.score.toFixed(3)) : null),
      item.caption ? el("span", { class: "caption" }, item.caption) : null);
  }

  const tiles = () => [...ui.grid.querySelectorAll(".tile")];

  // One tab stop for a group of buttons (roving tabindex): Tab reaches the current one and
  // arrows move among them, so the grid and the chips are a Tab each, not one per button.
  // Returns the index made current.
  function roveAmong(items, index, focus) {
    if (!items.length) return 0;
    const at = Math.max(0, Math.min(index, items.length - 1));
    items.forEach((item, i) => { item.tabIndex = i === at ? 0 : -1; });
    if (focus) items[at].focus();
    return at;
  }

  function rove(index, focus) {
    state.gridIndex = roveAmong(tiles(), index, focus);
  }

  // How far an arrow key moves in a group laid out in `columns` columns (undefined: not one)
  function arrowStep(key, columns = 1) {
    return { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns,
             Home: -Infinity, End: Infinity }[key];
  }

  const gridColumns = () => getComputedStyle(ui.grid).gridTemplateColumns.split(" ").length;

  // ------------------------------------------------------------------ the preview

  function openPreview(id) {
    const item = state.items.get(id);
    if (!item) return;
    state.previewId = id;
    rove(tiles().findIndex((t) => Number(t.dataset.id) === id), false);
    ui.previewImage.src = imageUrl(item.url);
    ui.previewImage.alt = item.caption || `[IMG_${id}]`;
    ui.previewTitle.textContent = `[IMG_${id}]`;
    show(ui.previewScore, typeof item.score === "number" ? `score ${item.score.toFixed(3)}` : "");
    ui.previewCaption.textContent = item.caption || "(no caption)";
    ui.previewOpen.href = imageUrl(item.url);
    ui.previewWords.replaceChildren(el("li", { class: "muted" }, "…"));
    show(ui.previewPicture, "");
    state.describing = ++state.seq;  // its own id: the grid's latest request stays the latest
    if (!send({ type: "describe", image: id, id: state.describing })) {
      ui.previewWords.replaceChildren(el("li", { class: "muted" }, "waiting for the server…"));
    }
    if (!ui.preview.open) ui.preview.showModal();
    ui.previewAdd.focus();
  }

  function onDescribed(reply) {
    if (reply.id !== state.describing) return;
    ui.previewWords.replaceChildren(...wordItems(reply.nearest_words));

    const picture = (reply.picture_words || []).map(([word]) => word);
    show(ui.previewPicture, picture.length ? `The picture alone: ${picture.join(", ")}` : "");
  }

  // Close the preview, then change the query (focus is back on the tile when results come)
  function fromPreview(change) {
    const id = state.previewId;
    ui.preview.close();
    change(id);
  }

  function stepPreview(delta) {
    const all = tiles();
    const at = all.findIndex((t) => Number(t.dataset.id) === state.previewId);
    const next = all[at + delta];
    if (next) openPreview(Number(next.dataset.id));
  }

  // ------------------------------------------------------------------ photos

  // A photo's key: its length and two 32-bit FNV-1a style hashes of its bytes (crypto.subtle is
  // missing where the page is served over plain http from another machine)
  function photoKey(buffer) {
    const bytes = new Uint8Array(buffer);
    let a = 0x811c9dc5;
    let b = 0x2f3e4d5c;
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i], 0x01000193);
      b = Math.imul(b ^ bytes[i], 0x27d4eb2d);
    }
    const hex = (h) => (h >>> 0).toString(16).padStart(8, "0");
    return `${bytes.length.toString(36)}-${hex(a)}${hex(b)}`;
  }

  // The photos the user added, for a reload or a link opened in this browser. Where IndexedDB
  // fails (storage refused, full), they stay in this page only.

  const store = {
    opened: null,
    run(mode, work) {
      if (!this.opened) {
        this.opened = new Promise((resolve, reject) => {
          const opening = indexedDB.open("wordpix", 1);
          opening.onupgradeneeded = () => opening.result.createObjectStore("photos");
          opening.onsuccess = () => resolve(opening.result);
          opening.onerror = () => reject(opening.error);
        });
      }
      return this.opened.then((db) => new Promise((resolve, reject) => {
        const transaction = db.transaction("photos", mode);
        const asked = work(transaction.objectStore("photos"));
        transaction.oncomplete = () => resolve(asked && asked.result);
        transaction.onerror = () => reject(transaction.error);
      }));
    },
    async keep(photo) {
      try {
        await this.run("readwrite", (photos) =>
          photos.put({ key: photo.key, blob: photo.blob, added: Date.now() }, photo.key));
        const all = await this.run("readonly", (photos) => photos.getAll());
        const old = all.sort((x, y) => y.added - x.added).slice(KEPT_PHOTOS);
        if (old.length) {
          await this.run("readwrite", (photos) => old.forEach((o) => photos.delete(o.key)));
        }
      } catch {
        // kept in this page only
      }
    },
    async find(key) {
      try {
        const found = await this.run("readonly", (photos) => photos.get(key));
        return found ? found.blob : null;
      } catch {
        return null;
      }
    },
  };

  // The photos an address names (`1:key,2:key`): this browser may have them
  function adoptPhotos(list) {
    for (const pair of list.split(",")) {
      const [n, key] = pair.split(":");
      const number = Number(n);
      if (!key || !Number.isInteger(number)) continue;
      const known = state.photos.get(number);
      if (!known || known.key !== key) state.photos.set(number, { key, blob: null, url: null });
    }
  }

  // Make sure photo n has its picture if this browser has it (from the store, once)
  async function loadPhoto(n) {
    if (!state.photos.has(n)) state.photos.set(n, { key: null, blob: null, url: null });
    const photo = state.photos.get(n);
    if (photo.blob || !photo.key) return;
    if (!photo.looking) photo.looking = store.find(photo.key);
    const blob = await photo.looking;
    if (blob && !photo.blob) {
      Object.assign(photo, { blob, url: URL.createObjectURL(blob) });
      renderTerms();
    }
  }

  // -> Promise of the photo's upload number on this connection (sent once per connection)
  function uploadPhoto(photo, buffer) {
    if (!state.onServer.has(photo.key)) {
      const sent = new Promise((resolve, reject) => {
        state.sending.push({ resolve, reject });
      });
      state.onServer.set(photo.key, sent);
      sent.catch(() => {
        if (state.onServer.get(photo.key) === sent) state.onServer.delete(photo.key);
      });
      const ws = state.ws;
      (buffer ? Promise.resolve(buffer) : photo.blob.arrayBuffer()).then((bytes) => {
        // lost meanwhile: `disconnected` turned it down, and the next connection sends it anew
        if (state.ws === ws) send(bytes);
      });
      // the server keeps its last few uploads: the page forgets the oldest as it does
      for (const key of [...state.onServer.keys()].slice(0, -limit("uploads", MAX_UPLOADS))) {
        state.onServer.delete(key);
      }
    }
    return state.onServer.get(photo.key);
  }

  function onUploaded(reply) {
    const oldest = state.sending.shift();
    if (oldest) oldest.resolve(reply.upload);
  }

  // Photos the user adds: up to the server first (it says whether it can read them), then into
  // the query as [UPLOAD_n], and kept by the browser
  async function addPhotos(files) {
    const images = [...files].filter((f) => !f.type || f.type.startsWith("image/"));
    if (!images.length) {
      failed("that is not an image: drop a photo (JPEG, PNG, WebP…)");
      return;
    }
    if (!state.connected) {
      failed("not connected to the server: add the photo again once it is back");
      return;
    }
    const largest = limit("upload_bytes", 10 * 2 ** 20);
    if (images.some((f) => f.size > largest)) {
      failed(`a photo is too large (at most ${(largest / 2 ** 20).toFixed(0)} MB)`);
    }
    for (const file of images.filter((f) => f.size <= largest)) {
      await addPhoto(file);
    }
  }

  async function addPhoto(file) {
    const buffer = await file.arrayBuffer();
    const photo = { key: photoKey(buffer), blob: file, url: null };
    show(ui.summary, "reading the photo…");
    try {
      await uploadPhoto(photo, buffer);
    } catch (error) {
      show(ui.summary, "");
      failed(error.message === "not connected"
        ? "the connection was lost: add the photo again once it is back" : error.message);
      return;
    }
    photo.url = URL.createObjectURL(file);
    store.keep(photo);
    const replacing = state.replacing;
    state.replacing = null;
    const number = replacing ?? photoNumber(photo.key);
    state.photos.set(number, photo);
    if (replacing === null) addToQuery(`[UPLOAD_${number}]`, 1);
    else setQuery(ui.q.value, `Added the photo again as [UPLOAD_${number}]`);
  }

  // The photo's number: the one it already has, else the next one free
  function photoNumber(key) {
    for (const [n, photo] of state.photos) if (photo.key === key) return n;
    return Math.max(0, ...state.photos.keys(), ...uploadRefs(ui.q.value)) + 1;
  }

  function pickAgain(number) {
    state.replacing = number;
    ui.file.click();
  }

  // The query names photos this browser does not have (a link from elsewhere): say so, and how
  function showMissing(numbers) {
    settle();
    show(ui.summary, "");
    renderNearest([]);
    ui.grid.replaceChildren();
    ui.grid.dataset.q = "";
    const names = numbers.map((n) => `[UPLOAD_${n}]`).join(", ");
    const [it, a] = numbers.length === 1 ? ["it", "a photo"] : ["them", "photos"];
    // a link names its photos' keys; a number typed by hand names no photo at all
    const where = numbers.every((n) => state.photos.get(n).key)
      ? `added in another browser, and this one does not have ${it}` : "not added here";
    ui.missing.replaceChildren(
      el("p", {}, `This query uses ${a} (${names}) ${where}. Add ${it} again to run the ` +
        `query, or remove ${it}.`),
      el("div", { class: "missing-actions" },
        el("button", { type: "button", class: "primary", onclick: () => pickAgain(numbers[0]) },
          "Add this photo again…"),
        el("button", { type: "button", onclick: () => setQuery(formatQuery(parseQuery(
          ui.q.value).terms.filter((t) => !(t.kind === "upload" && numbers.includes(t.ref))))) },
          "Remove it from the query")));
    ui.missing.hidden = false;
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
    const { terms } = parseQuery(ui.q.value);
    const dropped = terms.filter((t) => t.kind === "image").map((t) => t.text);
    if (dropped.length) {
      ui.q.value = formatQuery(terms.filter((t) => t.kind !== "image"));
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

  // ------------------------------------------------------------------ events

  ui.queryForm.addEventListener("submit", (event) => {
    event.preventDefault();
    renderTerms();
    runQuery(ui.q.value);
  });
  ui.q.addEventListener("input", () => {
    renderTerms();
    // an emptied box (Escape, the field's own ×) goes back to the gallery as a new entry: Back,
    // Ctrl+Z or the note's Undo bring the query back
    if (!ui.q.value.trim() && state.view.mode === "query") {
      setQuery("", "Cleared the query: the gallery");
    }
  });

  // a click opens the preview; Shift+click subtracts at once
  ui.grid.addEventListener("click", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const id = Number(tile.dataset.id);
    if (event.shiftKey) addToQuery(`[IMG_${id}]`, -1);
    else openPreview(id);
  });
  ui.grid.addEventListener("keydown", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const id = Number(tile.dataset.id);
    const step = arrowStep(event.key, gridColumns());
    let delta = 0;
    if (event.key === "-" || ((event.key === "Enter" || event.key === " ") && event.shiftKey)) {
      delta = -1;
    } else if (event.key === "+" || event.key === "=") {
      delta = 1;
    }
    if (delta) addToQuery(`[IMG_${id}]`, delta);
    else if (step !== undefined) rove(Number(tile.dataset.index) + step, true);
    else return;
    event.preventDefault();
  });
  ui.grid.addEventListener("focusin", (event) => {
    const tile = event.target.closest(".tile");
    if (tile) rove(Number(tile.dataset.index), false);
  });
  ui.skip.addEventListener("click", (event) => {
    event.preventDefault();
    if (state.shown) rove(state.gridIndex, true);
    else ui.results.focus();
  });

  // the chips: one Tab stop per group, arrows within
  ui.examples.addEventListener("keydown", (event) => {
    const chips = [...event.target.closest(".chips")?.querySelectorAll(".chip") || []];
    const step = arrowStep(event.key);
    if (!chips.length || step === undefined) return;
    event.preventDefault();
    roveAmong(chips, chips.indexOf(event.target) + step, true);
  });

  // Arrow down from the query box goes to the results
  ui.q.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && state.shown) {
      event.preventDefault();
      rove(state.gridIndex, true);
    }
  });

  ui.nearest.addEventListener("click", (event) => {
    const button = event.target.closest(".word");
    if (button) addToQuery(button.dataset.word, event.shiftKey ? -1 : 1);
  });

  ui.previewAdd.addEventListener("click", () => fromPreview((id) => addToQuery(`[IMG_${id}]`, 1)));
  ui.previewSubtract.addEventListener("click", () =>
    fromPreview((id) => addToQuery(`[IMG_${id}]`, -1)));
  ui.previewLike.addEventListener("click", () =>
    fromPreview((id) => setQuery(`[IMG_${id}]`, `More like [IMG_${id}]`)));
  ui.previewWords.addEventListener("click", (event) => {
    const button = event.target.closest(".word");
    if (button) fromPreview(() => addToQuery(button.dataset.word, event.shiftKey ? -1 : 1));
  });
  ui.previewClose.addEventListener("click", () => ui.preview.close());
  ui.previewPrev.addEventListener("click", () => stepPreview(-1));
  ui.previewNext.addEventListener("click", () => stepPreview(1));
  ui.preview.addEventListener("click", (event) => {
    if (event.target === ui.preview) ui.preview.close();  // the backdrop
  });
  ui.preview.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      stepPreview(event.key === "ArrowLeft" ? -1 : 1);
    }
  });
  ui.preview.addEventListener("close", () => {
    state.describing = null;
    rove(state.gridIndex, true);  // back to the image it showed
  });

  ui.more.addEventListener("click", () => {
    const view = state.view;
    if (view.mode === "browse") {
      request({ type: "browse", after: view.after, k: PAGE });
    } else {
      runQuery(view.text, Math.min(limit("results", MAX_RESULTS), view.k + PAGE), false);
    }
  });

  ui.helpToggle.addEventListener("click", () => {
    const open = ui.help.classList.toggle("open");
    ui.helpToggle.setAttribute("aria-expanded", String(open));
  });

  ui.pick.addEventListener("click", () => {
    state.replacing = null;
    ui.file.click();
  });
  ui.file.addEventListener("change", () => {
    addPhotos(ui.file.files);
    ui.file.value = "";
  });

  // drag and drop of photos anywhere on the page; the overlay ignores the pointer
  let dragDepth = 0;
  const carriesFiles = (event) =>
    Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    ui.drop.hidden = false;
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.drop.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    ui.drop.hidden = true;
    addPhotos(event.dataTransfer.files);
  });
  // and pasted ones
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (files.length) {
      event.preventDefault();
      addPhotos(files);
    }
  });

  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (typing || ui.preview.open || event.altKey) return;
    const command = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (event.key === "/" && !command) {
      event.preventDefault();
      ui.q.focus();
      ui.q.select();
    } else if (command && key === "z" && !event.shiftKey) {
      event.preventDefault();
      undo();
    } else if (command && (key === "y" || (key === "z" && event.shiftKey))) {
      event.preventDefault();
      history.forward();
    }
  });

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

  // ------------------------------------------------------------------ start

  state.token = savedToken(state.server.address);
  takeTokenFromAddress();
  if (fromDisk || params.has("server")) {
    ui.serverForm.hidden = false;
    ui.serverAddress.value = state.server.address;
  }
  const address = readAddress();
  adoptPhotos(address.photos);
  ui.q.value = address.q;
  state.view = address.q ? { mode: "query", text: address.q, k: PAGE, after: 0 } : state.view;
  if (address.q) document.body.classList.add("searched");
  record(address.q, false);
  renderTerms();
  connect();
})();
