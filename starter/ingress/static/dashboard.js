// Submits the portfolio's filters when one changes (the charts are SVG drawn by the
// server: no chart code runs here).
"use strict";
for (const select of document.querySelectorAll("form.filters select")) {
  select.addEventListener("change", () => select.form.submit());
}
