// History: every query run is an entry of the browser's history (#q=… in the address), so
// Back and Forward walk the refinements; Ctrl+Z and the toast's Undo are Back within the page.
"use strict";

// ------------------------------------------------------------------ history and undo

// Put text in the box and run it as a new history entry: every change made through the page
// goes through here, and says so at the bottom of the screen (far from the box on a phone),
// with a way back.
function setQuery(text, said) {
  ui.q.value = text;
  readBox();
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
  for (const [name, value] of Object.entries(filterFields())) hash.set(name, value);
  const rest = hash.toString();
  return location.pathname + location.search + (rest ? `#${rest}` : "");
}

function readAddress() {
  const hash = new URLSearchParams(location.hash.slice(1));
  return { q: hash.get("q") || params.get("q") || "", photos: hash.get("photos") || "", hash };
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
  applyFilterFields(address.hash);
  const text = event.state && typeof event.state.q === "string" ? event.state.q : address.q;
  ui.q.value = text;
  readBox();
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
