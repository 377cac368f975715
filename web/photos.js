// Photos: picked, dropped or pasted ones go up as binary messages and join the query as
// [UPLOAD_n], n the page's own number; this browser keeps them (IndexedDB) for reloads and links.
"use strict";

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
  if (replacing === null) addToQuery(uploadTerm(number), 1);
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
      el("button", { type: "button", onclick: () => leaveOut(numbers) },
        "Remove it from the query")));
  ui.missing.hidden = false;
}

function leaveOut(numbers) {
  const terms = currentTerms();
  if (!terms) return;
  const kept = terms.filter((t) => !(t.kind === "upload" && numbers.includes(t.ref)));
  toast(`Query: ${setTerms(kept) || "the gallery"}`);
}

// The page's photo numbers in a query's text, which it translates to the server's and back:
// references only, not a reading of the query (the server reads it)
const UPLOAD_REF = /\[\s*UPLOAD_(\d{1,9})\s*\]/gi;

const uploadRefs = (text) =>
  [...new Set([...text.matchAll(UPLOAD_REF)].map((match) => Number(match[1])))];

// The server's text (its canonical query) with the page's photo numbers
const fromServer = (text) => text.replace(UPLOAD_REF, (whole, m) =>
  (state.back.has(Number(m)) ? `[UPLOAD_${state.back.get(Number(m))}]` : whole));

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
