// wordpix search page: plain JavaScript, no build step, nothing fetched but the query server.
//
// The text box holds the real query (e.g. `dog+2*[IMG_5]`); the terms strip under it is always
// derived from parsing that text, and every change made through the page (clicking an image,
// a chip, a nearest word, a weight button, an upload) rewrites the text and runs it again.
"use strict";

(() => {
  const PAGE = 24;                 // results asked for at a time
  const MAX_RESULTS = 200;         // the server's default limit; hello.limits overrides it
  const RETRY_FIRST = 500;         // reconnect backoff, ms: 0.5 s doubling up to 5 s
  const RETRY_MAX = 5000;
  const SEARCHING_AFTER = 150;     // say "searching…" only if a reply takes longer than this

  const $ = (id) => document.getElementById(id);
  const ui = {
    q: $("q"), queryForm: $("query-form"), pick: $("pick"), file: $("file"), terms: $("terms"),
    examples: $("examples"), grid: $("grid"), more: $("more"), summary: $("summary"),
    corrections: $("corrections"), error: $("error"), nearest: $("nearest"),
    nearestHint: $("nearest-hint"), connection: $("connection"),
    connectionText: $("connection-text"), galleryName: $("gallery-name"),
    serverForm: $("server-form"), serverAddress: $("server-address"), drop: $("drop"),
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

  // ------------------------------------------------------------------ state

  const state = {
    server: endpoints(params.get("server") || (fromDisk ? "localhost:9998" : location.host)),
    ws: null,
    connected: false,
    everConnected: false,
    retryDelay: RETRY_FIRST,
    retryTimer: null,
    hello: null,
    seq: 0,                  // request ids, incrementing
    latest: 0,               // the id of the one request whose reply is wanted; others are stale
    view: { mode: "browse", text: "", k: PAGE, after: 0 },
    shown: 0,                // tiles in the grid
    uploads: new Map(),      // upload number on this connection -> { blob, url }
    pending: [],             // uploads sent, in order, awaiting "uploaded" (or an error)
    remap: new Map(),        // after a reconnect: old upload number -> new one
    before: null,            // while uploading again: the old numbers' photos
    searchingTimer: null,
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
    setQuery(formatQuery(terms));
  }

  function editTerm(index, change) {
    const { terms } = parseQuery(ui.q.value);
    if (!terms[index]) return;
    if (change(terms[index], terms) === "remove") terms.splice(index, 1);
    setQuery(formatQuery(terms));
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

  const imageUrl = (url) => new URL(url, state.server.http).href;
  const galleryUrl = (id) => imageUrl(`/images/${id}`);

  function show(node, text) {
    node.hidden = !text;
    if (typeof text === "string") node.textContent = text;
  }

  // ------------------------------------------------------------------ the terms strip

  function renderTerms() {
    const { terms } = parseQuery(ui.q.value);
    ui.terms.replaceChildren(...terms.map((term, index) => {
      let face;
      if (term.kind === "image") {
        face = el("img", { src: galleryUrl(term.ref), alt: term.text, title: term.text });
      } else if (term.kind === "upload" && state.uploads.has(term.ref)) {
        face = el("img", { src: state.uploads.get(term.ref).url, alt: term.text,
                           title: `${term.text} (your photo)` });
      } else if (term.kind === "upload") {
        face = el("span", { class: "missing", title: "no such upload on this connection" }, "?");
      }
      const label = term.text;
      const signName = term.sign < 0 ? "subtracted" : "added";
      return el("li", { class: `term ${term.kind}`, dataset: { sign: signName, index } },
        el("button", {
          type: "button", class: "sign", title: `${signName}: click to flip`,
          "aria-label": `${term.sign < 0 ? "add" : "subtract"} ${label} instead`,
          onclick: () => editTerm(index, (t) => { t.sign = -t.sign; }),
        }, term.sign < 0 ? "−" : "+"),
        face,
        el("span", { class: "label" }, label),
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
    }));
    ui.terms.hidden = terms.length === 0;
  }

  // Put text in the box and run it: every change made through the page goes through here.
  function setQuery(text) {
    ui.q.value = text;
    renderTerms();
    runQuery(text);
  }

  // ------------------------------------------------------------------ requests

  function send(message) {
    if (!state.connected) return false;
    state.ws.send(typeof message === "string" || message instanceof ArrayBuffer
      ? message : JSON.stringify(message));
    return true;
  }

  function limit(name, fallback) {
    return (state.hello && state.hello.limits && state.hello.limits[name]) || fallback;
  }

  function runQuery(text, k = PAGE) {
    text = text.trim();
    if (!text) {
      browse(0);
      return;
    }
    state.view = { mode: "query", text, k, offset: 0 };
    remember(text);
    request({ type: "query", q: text, k });
  }

  // The gallery in id order, a page at a time: `after` is the last id shown (0: from the start).
  function browse(after) {
    state.view = { mode: "browse", text: "", k: PAGE, after };
    if (after === 0) remember("");
    request({ type: "browse", after, k: PAGE });
  }

  function request(message) {
    const id = ++state.seq;
    state.latest = id;  // replies to anything sent before are stale from now on
    clearTimeout(state.searchingTimer);
    if (!send({ ...message, id })) {
      show(ui.summary, "waiting for the server…");
      return;
    }
    state.searchingTimer = setTimeout(() => {
      if (state.latest === id) show(ui.summary, "searching…");
    }, SEARCHING_AFTER);
  }

  function rerun() {
    const view = state.view;
    if (view.mode === "query") runQuery(view.text, view.k);
    else browse(0);
  }

  // The query in the address (#q=...), so a reload or a shared link shows it again.
  function remember(text) {
    try {
      const bare = location.pathname + location.search;
      history.replaceState(null, "", text ? `${bare}#q=${encodeURIComponent(text)}` : bare);
    } catch {
      // some file:// setups refuse; the page works the same without it
    }
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
      case "uploaded": return onUploaded(message);
      case "error": return onError(message);
      default: return undefined;
    }
  }

  function onHello(hello) {
    state.hello = hello;
    const count = hello.gallery ? hello.gallery.count : 0;
    ui.galleryName.textContent = hello.gallery
      ? `${hello.gallery.name} · ${count.toLocaleString()} image${count === 1 ? "" : "s"}` : "";
    ui.q.maxLength = limit("query_chars", 500);
    renderExamples(hello.examples || [], hello.gallery_examples || []);
    // uploads belonged to the old connection: send the query's photos again, then re-run
    if (!reupload()) rerun();
  }

  function renderExamples(examples, galleryWords) {
    const chip = (text) => el("li", {}, el("button", {
      type: "button", class: "chip", onclick: () => setQuery(text),
    }, text));
    const group = (title, items) => items.length ? el("div", { class: "chip-group" },
      el("span", { class: "muted" }, title), el("ul", { class: "chips" }, items.map(chip))) : null;
    ui.examples.replaceChildren(...[
      group("Try", examples),
      group("In this gallery", galleryWords),
    ].filter(Boolean));
  }

  function isStale(message) {
    return message.id !== state.latest;
  }

  function settle() {
    clearTimeout(state.searchingTimer);
    show(ui.error, "");
    ui.grid.classList.remove("stale");
  }

  function onResults(reply) {
    if (isStale(reply)) return;
    settle();
    const n = reply.results.length;
    const ms = Number(reply.ms).toFixed(1);
    show(ui.summary, `${n} image${n === 1 ? "" : "s"} for ${reply.query} · ${ms} ms`);
    renderCorrections(reply.corrections || []);
    renderGrid(reply.results, false);
    ui.grid.dataset.q = reply.q;  // what the grid shows (the tests wait on it)
    renderNearest(reply.nearest_words || []);
    ui.more.hidden = n < state.view.k || state.view.k >= limit("results", MAX_RESULTS);
  }

  function onGallery(reply) {
    if (isStale(reply)) return;
    settle();
    renderCorrections([]);
    renderGrid(reply.results, reply.after > 0);
    ui.grid.dataset.q = "";
    renderNearest([]);
    show(ui.summary, `the gallery: ${state.shown} of ${reply.total.toLocaleString()} images`);
    state.view.after = reply.next;
    ui.more.hidden = reply.next === null;
  }

  function onError(reply) {
    if (reply.id === null || reply.id === undefined) {
      // a binary message (an upload) has no id: the oldest pending upload failed; what the
      // grid shows is still the answer to the query in the box
      if (reply.code === "bad_upload" && state.pending.length) {
        const failed = state.pending.shift();
        if (failed.from === undefined) URL.revokeObjectURL(failed.url);
      }
      if (ui.summary.textContent === "reading the photo…") show(ui.summary, "");
    } else if (isStale(reply)) {
      return;
    } else {
      clearTimeout(state.searchingTimer);
      show(ui.summary, "");
      ui.grid.classList.add("stale");
    }
    show(ui.error, reply.error || "the server could not answer");
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
        type: "button", class: "link", onclick: () => {
          let text = ui.q.value;
          for (const { from, to } of corrections) {
            const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
            text = text.replace(new RegExp(`(^|[^\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`,
              "giu"), `$1${to}`);
          }
          setQuery(text);
        },
      }, "use it in the query"));
    ui.corrections.hidden = false;
  }

  function renderGrid(items, append) {
    const tiles = items.map((item) => {
      const ref = `[IMG_${item.id}]`;
      const scored = typeof item.score === "number";
      return el("li", {},
        el("button", {
          type: "button", class: "tile", dataset: { id: item.id },
          title: item.caption || ref,
          "aria-label": `${ref}${scored ? ` score ${item.score.toFixed(3)}` : ""}` +
            `${item.caption ? `: ${item.caption}` : ""}`,
        },
          el("img", { src: imageUrl(item.url), alt: "", loading: "lazy", draggable: "false" }),
          el("span", { class: "meta" },
            el("span", { class: "ref" }, ref),
            scored ? el("span", { class: "score" }, item.score.toFixed(3)) : null),
          item.caption ? el("span", { class: "caption" }, item.caption) : null));
    });
    if (append) ui.grid.append(...tiles);
    else ui.grid.replaceChildren(...tiles);
    state.shown = ui.grid.children.length;
  }

  function renderNearest(words) {
    ui.nearest.replaceChildren(...words.map(([word, score]) => el("li", {},
      el("button", { type: "button", class: "word", dataset: { word },
                     title: `add ${word} (Shift+click: subtract)` },
        el("span", {}, word), el("span", { class: "score" }, score.toFixed(2))))));
    ui.nearestHint.hidden = words.length > 0;
  }

  // ------------------------------------------------------------------ uploads

  async function upload(files) {
    const images = [...files].filter((f) => !f.type || f.type.startsWith("image/"));
    if (!images.length) {
      show(ui.error, "that is not an image: drop a photo (JPEG, PNG, WebP…)");
      return;
    }
    if (!state.connected) {
      show(ui.error, "not connected to the server: add the photo again once it is back");
      return;
    }
    const largest = limit("upload_bytes", 10 * 2 ** 20);
    const ok = images.filter((f) => f.size <= largest);
    if (ok.length < images.length) {
      show(ui.error, `a photo is too large (at most ${(largest / 2 ** 20).toFixed(0)} MB)`);
    }
    // read them all first, then send in order: replies come back in the same order
    const ws = state.ws;
    const buffers = await Promise.all(ok.map((f) => f.arrayBuffer()));
    if (state.ws !== ws || !state.connected) {
      show(ui.error, "the connection was lost: add the photo again once it is back");
      return;
    }
    ok.forEach((file, index) => {
      state.pending.push({ blob: file, url: URL.createObjectURL(file) });
      send(buffers[index]);
    });
    if (ok.length) show(ui.summary, "reading the photo…");
  }

  function onUploaded(reply) {
    const sent = state.pending.shift();
    if (!sent) return;
    state.uploads.set(reply.upload, { blob: sent.blob, url: sent.url });
    if (sent.from === undefined) {
      addToQuery(`[UPLOAD_${reply.upload}]`, 1);
      return;
    }
    state.remap.set(sent.from, reply.upload);
    if (!state.pending.some((p) => p.from !== undefined)) {
      // all sent again: renumber them in the box and in the query shown, and run that
      const renumber = (text) => text.replace(UPLOAD_REF, (whole, n) =>
        state.remap.has(Number(n)) ? `[UPLOAD_${state.remap.get(Number(n))}]` : whole);
      ui.q.value = renumber(ui.q.value);
      state.view.text = renumber(state.view.text);
      state.remap.clear();
      state.before = null;
      renderTerms();
      rerun();
    }
  }

  // After a reconnect: upload again the photos the query names. False if there are none.
  function reupload() {
    const old = state.uploads;
    state.uploads = new Map();
    const named = [...parseQuery(ui.q.value).terms, ...parseQuery(state.view.text).terms];
    const wanted = [...new Set(named
      .filter((t) => t.kind === "upload" && old.has(t.ref)).map((t) => t.ref))];
    for (const [number, kept] of old) {
      if (!wanted.includes(number)) URL.revokeObjectURL(kept.url);
    }
    if (!wanted.length) return false;
    state.before = new Map(wanted.map((n) => [n, old.get(n)]));
    const ws = state.ws;
    Promise.all(wanted.map((n) => old.get(n).blob.arrayBuffer())).then((buffers) => {
      if (state.ws !== ws) return;  // lost again meanwhile: the next hello starts over
      wanted.forEach((number, index) => {
        state.pending.push({ ...old.get(number), from: number });
        send(buffers[index]);
      });
    });
    return true;
  }

  // ------------------------------------------------------------------ the connection

  function setStatus(stateName, text) {
    ui.connection.dataset.state = stateName;
    ui.connectionText.textContent = text;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (!state.everConnected) setStatus("connecting", "connecting…");
    else setStatus("disconnected", "disconnected — reconnecting…");
    let ws;
    try {
      ws = new WebSocket(state.server.ws);
    } catch {
      setStatus("disconnected", `disconnected: cannot reach ${state.server.address}`);
      retry();
      return;
    }
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.addEventListener("open", () => {
      if (state.ws !== ws) return;
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
      state.connected = false;
      // uploads in flight are lost with the connection; if the query's photos were being
      // sent again, the next connection starts that over from the old numbers
      if (state.before) {
        const keep = new Set([...state.before.values()].map((kept) => kept.url));
        for (const kept of state.uploads.values()) {
          if (!keep.has(kept.url)) URL.revokeObjectURL(kept.url);
        }
        state.uploads = state.before;
        state.before = null;
        state.remap.clear();
      }
      state.pending = [];
      retry();
    });
  }

  function retry() {
    const delay = state.retryDelay;
    state.retryDelay = Math.min(RETRY_MAX, delay * 2);
    setStatus("disconnected",
      `disconnected — retrying in ${(delay / 1000).toFixed(delay < 1000 ? 1 : 0)} s`);
    state.retryTimer = setTimeout(connect, delay);
  }

  function changeServer(address) {
    state.server = endpoints(address);
    ui.serverAddress.value = state.server.address;
    try {
      const next = new URLSearchParams(location.search);
      next.set("server", state.server.address);
      history.replaceState(null, "", `${location.pathname}?${next}${location.hash}`);
    } catch {
      // not essential
    }
    const old = state.ws;
    state.ws = null;
    state.connected = false;
    state.everConnected = false;
    state.retryDelay = RETRY_FIRST;
    state.pending = [];
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
    // an emptied box (the field's own × included) goes back to the gallery
    if (!ui.q.value.trim() && state.view.mode === "query") browse(0);
  });

  // a click adds an image, Shift+click subtracts it
  ui.grid.addEventListener("click", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const id = Number(tile.dataset.id);
    addToQuery(`[IMG_${id}]`, event.shiftKey ? -1 : 1);
  });
  ui.grid.addEventListener("keydown", (event) => {
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const id = Number(tile.dataset.id);
    let delta = 0;
    if (event.key === "-" || ((event.key === "Enter" || event.key === " ") && event.shiftKey)) {
      delta = -1;
    } else if (event.key === "+") {
      delta = 1;
    }
    if (delta) {
      event.preventDefault();
      addToQuery(`[IMG_${id}]`, delta);
    }
  });

  ui.nearest.addEventListener("click", (event) => {
    const button = event.target.closest(".word");
    if (button) addToQuery(button.dataset.word, event.shiftKey ? -1 : 1);
  });

  ui.more.addEventListener("click", () => {
    const view = state.view;
    if (view.mode === "browse") {
      state.latest = ++state.seq;
      send({ type: "browse", after: view.after, k: PAGE, id: state.latest });
    } else {
      runQuery(view.text, Math.min(limit("results", MAX_RESULTS), view.k + PAGE));
    }
  });

  ui.pick.addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => {
    upload(ui.file.files);
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
    upload(event.dataTransfer.files);
  });
  // and pasted ones
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (files.length) {
      event.preventDefault();
      upload(files);
    }
  });

  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      ui.q.focus();
      ui.q.select();
    }
  });

  ui.serverForm.addEventListener("submit", (event) => {
    event.preventDefault();
    changeServer(ui.serverAddress.value);
  });

  // ------------------------------------------------------------------ start

  if (fromDisk || params.has("server")) {
    ui.serverForm.hidden = false;
    ui.serverAddress.value = state.server.address;
  }
  const hashed = new URLSearchParams(location.hash.slice(1)).get("q") || params.get("q") || "";
  ui.q.value = hashed;
  state.view = hashed ? { mode: "query", text: hashed, k: PAGE, offset: 0 } : state.view;
  renderTerms();
  connect();
})();
