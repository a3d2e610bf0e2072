// Sorting and filtering of the per-video table (no dependencies).
(function () {
  "use strict";
  var table = document.getElementById("videos");
  if (!table) { return; }
  var tbody = table.tBodies[0];
  var headers = table.querySelectorAll("th.sortable");
  var count = document.getElementById("video-count");
  var filter = document.getElementById("video-filter");

  function key(row, col, numeric) {
    var cell = row.cells[col];
    if (!cell) { return numeric ? NaN : ""; }
    if (numeric) {
      var raw = cell.getAttribute("data-v");
      return raw === null || raw === "" ? NaN : parseFloat(raw);
    }
    return (cell.getAttribute("data-v") || cell.textContent || "").trim().toLowerCase();
  }

  function sortBy(th) {
    var col = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = key(a, col, numeric), y = key(b, col, numeric);
      if (numeric) {
        var xn = isNaN(x), yn = isNaN(y);
        if (xn || yn) { return xn === yn ? 0 : (xn ? 1 : -1); }  // missing values always last
        return asc ? x - y : y - x;
      }
      if (x === y) { return 0; }
      return (x < y ? -1 : 1) * (asc ? 1 : -1);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    tbody.appendChild(frag);
  }

  headers.forEach(function (th) {
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); }
    });
  });

  function applyFilter() {
    var q = (filter.value || "").trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(tbody.rows, function (r) {
      var hit = !q || (r.getAttribute("data-search") || "").indexOf(q) !== -1;
      r.hidden = !hit;
      if (hit) { shown += 1; }
    });
    if (count) { count.textContent = shown + " of " + tbody.rows.length + " videos shown"; }
  }
  if (filter) { filter.addEventListener("input", applyFilter); applyFilter(); }
})();
