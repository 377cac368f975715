// The preview: one image whole, its caption and score, the words nearest it (`describe`), and
// add / subtract / more like this; ← → walk the results.
"use strict";

// ------------------------------------------------------------------ the preview

function openPreview(id) {
  const item = state.items.get(id);
  if (!item) return;
  state.previewId = id;
  rove(tiles().findIndex((t) => Number(t.dataset.id) === id), false);
  // the original, scaled by the browser (the thumbnail where browsers cannot show the file)
  ui.previewImage.src = imageUrl(item.preview || item.url);
  ui.previewImage.alt = item.caption || `[IMG_${id}]`;
  ui.previewTitle.textContent = `[IMG_${id}]`;
  const said = [typeof item.score === "number" ? `score ${item.score.toFixed(3)}` : "",
    item.taken ? item.taken.replace("T", " ").slice(0, 16) : ""];
  show(ui.previewScore, said.filter(Boolean).join(" · "));
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
  fillFromMap(reply);
  ui.previewWords.replaceChildren(...wordItems(reply.nearest_words));

  const picture = (reply.picture_words || []).map(([word]) => word);
  show(ui.previewPicture, picture.length ? `The picture alone: ${picture.join(", ")}` : "");
}

// An image opened from the map (map.js) that no reply of the grid had shown came with its id
// and thumbnail only: its describe reply says the rest
function fillFromMap(reply) {
  const item = state.items.get(reply.image);
  if (!item || !item.fromMap) return;
  Object.assign(item, { caption: reply.caption, url: reply.url, thumb: reply.thumb,
                        preview: reply.preview || reply.url, taken: reply.taken, fromMap: false });
  ui.previewImage.src = imageUrl(item.preview);
  ui.previewImage.alt = item.caption || `[IMG_${item.id}]`;
  ui.previewCaption.textContent = item.caption || "(no caption)";
  ui.previewOpen.href = imageUrl(item.url);
  show(ui.previewScore, item.taken ? item.taken.replace("T", " ").slice(0, 16) : "");
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
  if (at < 0) return;  // opened from the map, not among the results: no next one
  const next = all[at + delta];
  if (next) openPreview(Number(next.dataset.id));
}

ui.previewAdd.addEventListener("click", () => fromPreview((id) => addToQuery(imageTerm(id), 1)));
ui.previewSubtract.addEventListener("click", () =>
  fromPreview((id) => addToQuery(imageTerm(id), -1)));
ui.previewLike.addEventListener("click", () =>
  fromPreview((id) => setQuery(`[IMG_${id}]`, `More like [IMG_${id}]`)));
ui.previewWords.addEventListener("click", (event) => {
  const button = event.target.closest(".word");
  if (button) {
    fromPreview(() => addToQuery(wordTerm(button.dataset.word), event.shiftKey ? -1 : 1));
  }
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
  if (mapOpen()) ui.mapCanvas.focus();  // back to the map it was opened from
  else rove(state.gridIndex, true);  // back to the image it showed
});
