// The query box and its terms: the strip of the server's reading of the text, edits made on
// it (flip, weight, remove, add) printed back as query text, running a query, the chips, and the
// notices of a reply (corrections, suggestions, errors).
"use strict";

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

const sameTerm = (a, b) => a.kind === b.kind && termBody(a) === termBody(b);

// Terms the page adds: a gallery image, one of the page's photos, a vocabulary word (the
// nearest words' and the preview's, already clean)
const imageTerm = (id) => ({ sign: 1, weight: 1, kind: "image", ref: id, text: `[IMG_${id}]` });
const uploadTerm = (n) => ({ sign: 1, weight: 1, kind: "upload", ref: n, text: `[UPLOAD_${n}]` });
const wordTerm = (word) => ({ sign: 1, weight: 1, kind: "words", words: [word], text: word });

// Add `delta` (+1 or -1) of a term: a new term, or more (or less) of one already there. Until
// the server has read the box's text, the term is added at its end.
function addToQuery(term, delta) {
  const terms = currentTerms();
  if (!terms) {
    const text = ui.q.value.trim();
    const sign = delta > 0 ? (text ? "+" : "") : "-";
    setQuery(`${text}${sign}${termBody(term)}`, `${delta > 0 ? "Added" : "Subtracted"} ` +
      `${term.text}`);
    return;
  }
  const found = terms.find((t) => sameTerm(t, term));
  if (!found) {
    terms.push({ ...term, sign: delta > 0 ? 1 : -1 });
  } else {
    // rounded: sums of typed decimals pick up float noise (2.675 - 1 = 1.6749999999999998)
    const signed = Math.round((found.sign * found.weight + delta) * 1e9) / 1e9;
    if (signed === 0) terms.splice(terms.indexOf(found), 1);
    else Object.assign(found, { sign: Math.sign(signed), weight: Math.abs(signed) });
  }
  const query = setTerms(terms);
  const verb = delta > 0 ? "Added" : "Subtracted";
  toast(`${verb} ${term.text}: ${query || "the gallery"}`);
}

// A change to the strip's term `index`; none while the strip shows an older text than the box's
function editTerm(index, change) {
  const terms = currentTerms();
  if (!terms || !terms[index]) return;
  if (change(terms[index], terms) === "remove") terms.splice(index, 1);
  toast(`Query: ${setTerms(terms) || "the gallery"}`);
}

// Put the query these terms make in the box and run it; the page knows their reading already
// (as the server prints each: cleaned words, `[IMG_12]`), so the strip follows at once
function setTerms(terms) {
  const query = formatQuery(terms);
  const read = terms.map((term) => ({ ...term, text: termBody(term) }));
  ui.q.value = query;
  state.parsed = { text: query, terms: read };
  renderTerms();
  runQuery(query);
  return query;
}

// ------------------------------------------------------------------ the box read by the server

// The page has no parser of its own: it asks the server how the box's text reads (`parse`,
// docs/protocol.md) and the strip shows the terms of its `parsed` reply. state.parsed is the
// reading of state.parsed.text; a copy of its terms, or null when that is not the box's text.
function currentTerms() {
  return state.parsed.text === ui.q.value ? state.parsed.terms.map((t) => ({ ...t })) : null;
}

function readBox() {
  const text = ui.q.value;
  if (state.parsed.text === text) {
    renderTerms();
  } else if (!text.trim()) {
    state.parsed = { text, terms: [] };
    renderTerms();
  } else {
    state.parsing = ++state.seq;  // its own id: the grid's latest request stays the latest
    send({ type: "parse", q: text, id: state.parsing });
  }
}

function onParsed(reply) {
  if (reply.id !== state.parsing || reply.q !== ui.q.value) return;  // the box changed since
  state.parsed = { text: reply.q, terms: (reply.terms || []).map(pageTerm) };
  renderTerms();
}

// A term of the reply as the page edits it: sign ±1; a piece that is no term (its `error`)
// kept as typed, weight 1, so that edits print it back unchanged; image and upload texts in
// canonical form, as the strip labels them
function pageTerm(said) {
  const sign = said.sign === "-" ? -1 : 1;
  if (said.error) return { sign, weight: 1, kind: "words", words: [], text: said.text };
  const term = { sign, weight: said.weight, kind: said.kind, text: said.text };
  if (said.kind === "words") return { ...term, words: said.words };
  const name = said.kind === "image" ? "IMG" : "UPLOAD";
  return { ...term, ref: said.ref, text: `[${name}_${said.ref}]` };
}

// `from` replaced by `to` where it stands as a whole word (a correction, a suggestion)
function replaceWord(text, from, to) {
  const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return text.replace(new RegExp(`(^|[^\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "giu"),
    `$1${to}`);
}

const heavier = (w) => Math.min(100, w >= 1 ? Math.floor(w) + 1 : Math.min(1, w * 2));
const lighter = (w) => (w > 1 ? Math.ceil(w) - 1 : Math.max(0.125, w / 2));

// ------------------------------------------------------------------ the terms strip

function renderTerms() {
  const { terms } = state.parsed;
  const said = state.understood && state.understood.text === state.parsed.text.trim()
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
    // says it waits; the next hello reruns
    request({ type: "query", q: text, k, explain: true, ...queryOptions() }, id);
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
  request({ type: "query", q: translated, k, explain: true, ...queryOptions() }, id);
}

function rerun() {
  const view = state.view;
  if (view.mode === "query") runQuery(view.text, view.k, false);
  else if (view.mode === "duplicates") listDuplicates(0);
  else browse(0);
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
  if (reply.id === mapState.asking) {
    mapFailed(reply);
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

ui.queryForm.addEventListener("submit", (event) => {
  event.preventDefault();
  readBox();
  runQuery(ui.q.value);
});
ui.q.addEventListener("input", () => {
  readBox();
  // an emptied box (Escape, the field's own ×) goes back to the gallery as a new entry: Back,
  // Ctrl+Z or the note's Undo bring the query back
  if (!ui.q.value.trim() && state.view.mode === "query") {
    setQuery("", "Cleared the query: the gallery");
  }
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
  if (event.key === "ArrowDown" && mapOpen()) {
    event.preventDefault();  // the map stands in the grid's place
    ui.mapCanvas.focus();
  } else if (event.key === "ArrowDown" && state.shown) {
    event.preventDefault();
    rove(state.gridIndex, true);
  }
});

ui.helpToggle.addEventListener("click", () => {
  const open = ui.help.classList.toggle("open");
  ui.helpToggle.setAttribute("aria-expanded", String(open));
});
