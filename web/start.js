// The start: the server from the address, the token out of it, the query of a link, connect.
"use strict";

// ------------------------------------------------------------------ start

state.server = endpoints(params.get("server") || (fromDisk ? "localhost:9998" : location.host));
state.token = savedToken(state.server.address);
takeTokenFromAddress();
if (fromDisk || params.has("server")) {
  ui.serverForm.hidden = false;
  ui.serverAddress.value = state.server.address;
}
const opened = readAddress();
adoptPhotos(opened.photos);
applyFilterFields(opened.hash);
ui.q.value = opened.q;
state.view = opened.q ? { mode: "query", text: opened.q, k: PAGE, after: 0 } : state.view;
if (opened.q) document.body.classList.add("searched");
record(opened.q, false);
readBox();  // once connected: the hello asks again
connect();
