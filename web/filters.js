// When and where: a date range, a folder (and all below it), and the order of results. The
// server applies the filter in its search, so a filter that keeps three photos shows those
// three; "newest first" orders the close matches (above the relevance line) by date.
"use strict";

// The fields a query message carries for the filters as set ({} for none)
function queryOptions() {
  const filter = {};
  if (ui.filterFrom.value) filter.from = ui.filterFrom.value;
  if (ui.filterTo.value) filter.to = ui.filterTo.value;
  const folder = ui.filterFolder.value.trim();
  if (folder) filter.folder = folder;
  const options = Object.keys(filter).length ? { filter } : {};
  if (ui.filterOrder.value !== "score") options.order = ui.filterOrder.value;
  return options;
}

// The filters as they travel in the page's address (#from=…&folder=…&order=date), so that a
// link, a reload and Back keep them with the query
const FILTER_FIELDS = { from: "filterFrom", to: "filterTo", folder: "filterFolder" };

function filterFields() {
  const fields = {};
  for (const [name, input] of Object.entries(FILTER_FIELDS)) {
    const value = ui[input].value.trim();
    if (value) fields[name] = value;
  }
  if (ui.filterOrder.value !== "score") fields.order = ui.filterOrder.value;
  return fields;
}

function applyFilterFields(hash) {
  for (const [name, input] of Object.entries(FILTER_FIELDS)) ui[input].value = hash.get(name) || "";
  ui.filterOrder.value = hash.get("order") === "date" ? "date" : "score";
  if (Object.keys(filterFields()).length) ui.filters.open = true;  // a linked filter shows
}

// The hello's gallery: the filters (folded until opened) show where its photos have dates or
// lie in folders, and the folder field offers the gallery's fullest folders as it is typed in
function showFilters(gallery) {
  const [first, last] = (gallery && gallery.taken) || [null, null];
  const folders = (gallery && gallery.folders) || [];
  ui.filters.hidden = !first && !folders.length;
  for (const input of [ui.filterFrom, ui.filterTo]) {
    input.min = first || "";
    input.max = last || "";
  }
  ui.folderList.replaceChildren(...folders.map(([path, photos]) =>
    el("option", { value: path, label: `${path} · ${photos.toLocaleString()} photos` })));
}

function filtersChanged() {
  if (state.view.mode === "query") runQuery(state.view.text, PAGE, false);
  else record(state.view.text, false);  // the address keeps them for the next query
}

for (const input of [ui.filterFrom, ui.filterTo, ui.filterOrder]) {
  input.addEventListener("change", filtersChanged);
}
ui.filterFolder.addEventListener("change", filtersChanged);
ui.filterFolder.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    ui.filterFolder.blur();  // its change runs the query
  }
});
ui.filterForm.addEventListener("submit", (event) => event.preventDefault());
ui.filterClear.addEventListener("click", () => {
  ui.filterFrom.value = ui.filterTo.value = ui.filterFolder.value = "";
  ui.filterOrder.value = "score";
  filtersChanged();
});
