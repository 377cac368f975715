// The grid: results and gallery pages as tiles (one Tab stop, arrows move), and the words
// nearest the query beside it.
"use strict";

function onResults(reply) {
  if (isStale(reply)) return;
  settle();
  const n = reply.results.length;
  const ms = Number(reply.ms).toFixed(1);
  const close = typeof reply.relevant === "number"
    ? ` (${reply.relevant} close match${reply.relevant === 1 ? "" : "es"})` : "";
  show(ui.summary, `${n} image${n === 1 ? "" : "s"}${close} for ${fromServer(reply.query)}` +
    ` · ${ms} ms`);
  renderCorrections(reply.corrections || []);
  renderSuggestions(reply.suggestions || []);
  const before = state.understood;
  state.understood = { text: state.view.text, terms: reply.terms || [] };
  if (marksEnglish(before) || marksEnglish(state.understood)) renderTerms();
  renderGrid(reply.results, false);
  drawLine(reply.relevant, n);
  ui.grid.dataset.q = state.view.text;  // what the grid shows (the tests wait on it)
  renderNearest(reply.nearest_words || []);
  renderExplanation(reply.explain);
  mapResults(reply.results, state.view.text, reply.relevant);  // on the map, shown or not
  ui.more.hidden = n < state.view.k || state.view.k >= limit("results", MAX_RESULTS);
}

function onGallery(reply) {
  if (isStale(reply)) return;
  settle();
  renderGrid(reply.results, reply.after > 0);
  if (!reply.after) mapResults([], "");  // no query: nothing to highlight on the map
  ui.grid.dataset.q = "";
  renderNearest([]);
  renderExplanation(null);
  show(ui.summary, `the gallery: ${state.shown} of ${reply.total.toLocaleString()} images`);
  state.view.after = reply.next;
  ui.more.hidden = reply.next === null;
}

// The relevance line after the close matches: where, on dev, results stop being mostly right
// (docs/gallery-index.md). None when the query's kind was not calibrated, or all are close.
function drawLine(relevant, shown) {
  if (typeof relevant !== "number" || relevant >= shown) return;
  const text = relevant === 0 ? "No close matches: the nearest images are these"
    : `${relevant} close match${relevant === 1 ? "" : "es"}, then weaker ones`;
  const line = el("li", { class: "relevance-line", role: "separator" }, el("span", {}, text));
  const after = ui.grid.querySelectorAll(".tile")[relevant - 1];
  if (after) after.closest("li").after(line);
  else ui.grid.prepend(line);
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
  state.shown = tiles().length;
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
    // the thumbnail (the original only from an index made without them)
    el("img", { src: imageUrl(item.thumb || item.url), alt: "", loading: "lazy",
      draggable: "false" }),
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

// a click opens the preview; Shift+click subtracts at once
ui.grid.addEventListener("click", (event) => {
  const tile = event.target.closest(".tile");
  if (!tile) return;
  const id = Number(tile.dataset.id);
  if (event.shiftKey) addToQuery(imageTerm(id), -1);
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
  if (delta) addToQuery(imageTerm(id), delta);
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
  if (mapOpen()) ui.mapCanvas.focus();  // the map stands in the grid's place
  else if (state.shown) rove(state.gridIndex, true);
  else ui.results.focus();
});

ui.nearest.addEventListener("click", (event) => {
  const button = event.target.closest(".word");
  if (button) addToQuery(wordTerm(button.dataset.word), event.shiftKey ? -1 : 1);
});

ui.more.addEventListener("click", () => {
  const view = state.view;
  if (view.mode === "browse") {
    request({ type: "browse", after: view.after, k: PAGE });
  } else if (view.mode === "duplicates") {
    listDuplicates(view.after);
  } else {
    runQuery(view.text, Math.min(limit("results", MAX_RESULTS), view.k + PAGE), false);
  }
});
