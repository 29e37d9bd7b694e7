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
// checkboxes in the entries table: a hibernate.load / checkout snippet for the names checked.
// Names and the path come from data attributes; JSON.stringify makes valid Python strings,
// and the snippet is set as text (never as HTML).
document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table.entries[data-path]");
  if (!table) return;
  const box = document.createElement("div");
  box.className = "snippet";
  const code = document.createElement("pre");
  code.className = "snippet";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "copy";
  copy.addEventListener("click", () => {
    if (navigator.clipboard) navigator.clipboard.writeText(code.textContent).then(
      () => { copy.textContent = "copied"; }, () => { copy.textContent = "copy failed"; });
  });
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = "select variables to get the code that loads them";
  box.append(note, code, copy);
  const update = () => {
    const names = [...table.querySelectorAll("input.pick:checked")].map(
      (b) => JSON.stringify(b.dataset.name));
    const d = table.dataset;
    const where = d.call === "checkout"
      ? `${JSON.stringify(d.path)}, ${JSON.stringify(d.checkpoint)}` : JSON.stringify(d.path);
    code.textContent = `hibernate.${d.call}(${where}, include=[${names.join(", ")}])`;
    code.hidden = copy.hidden = names.length === 0;
    note.hidden = !code.hidden;
    copy.textContent = "copy";
  };
  table.addEventListener("change", update);
  update();
  table.after(box);
});
