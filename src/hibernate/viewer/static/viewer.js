// hibernate viewer: served from the package (CSP: script-src 'self', no inline script).
"use strict";
// the token is now in an HttpOnly cookie: take it out of the address bar and history
if (new URLSearchParams(location.search).has("token")) {
  const url = new URL(location.href);
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}
// a filter box above the entries table: show the rows whose name contains the text
document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table.entries");
  if (!table) return;
  const box = document.createElement("input");
  box.className = "filter";
  box.placeholder = "filter names";
  box.addEventListener("input", () => {
    const text = box.value.toLowerCase();
    for (const row of table.tBodies[0].rows) {
      row.hidden = !row.cells[0].textContent.toLowerCase().includes(text);
    }
  });
  table.before(box);
});
