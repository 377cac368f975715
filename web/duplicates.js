// Near duplicates: the gallery's groups of near-identical photos (resized, recompressed,
// cropped copies, burst shots), largest first, each group a row of tiles under its heading.
// The server finds them from the photos' appearance vectors (docs/gallery-index.md); deleting
// is the user's own business: the page only shows them.
"use strict";

function showDuplicates(gallery) {
  ui.duplicates.hidden = !(gallery && gallery.duplicates);
}

function listDuplicates(after) {
  state.view = { mode: "duplicates", text: "", k: PAGE, after };
  request({ type: "duplicates", after, k: DUPLICATE_GROUPS });
}

function onDuplicates(reply) {
  if (isStale(reply)) return;
  settle();
  if (reply.setup) {
    ui.setup.replaceChildren(el("p", {}, ...withCode(reply.setup)));
    ui.setup.hidden = false;
  }
  const append = reply.after > 0;
  const start = append ? state.shown : 0;
  if (!append) state.items.clear();
  let index = start;
  const rows = reply.groups.flatMap((group) => {
    const more = group.count - group.results.length;
    const head = el("li", { class: "group-head", role: "separator" }, el("span", {},
      `${group.count} near-identical photos${more > 0 ? ` (${more} more not shown)` : ""}`));
    return [head, ...group.results.map((item) => {
      state.items.set(item.id, item);
      return el("li", { class: "in-group" }, tileFor(item, index++));
    })];
  });
  if (append) ui.grid.append(...rows);
  else ui.grid.replaceChildren(...rows);
  state.shown = tiles().length;
  ui.grid.dataset.q = "";
  renderNearest([]);
  renderExplanation(null);
  const groups = reply.total.toLocaleString();
  show(ui.summary, reply.total === 0 && !reply.setup ? "No near duplicates in this gallery"
    : `${groups} group${reply.total === 1 ? "" : "s"} of near duplicates ` +
      `(${reply.photos.toLocaleString()} photos) · ${Number(reply.ms).toFixed(1)} ms`);
  state.view.after = reply.next;
  ui.more.hidden = reply.next === null;
}

ui.duplicates.addEventListener("click", () => listDuplicates(0));
