// Progressive enhancement only: every page works without this file.
// After htmx swaps <main>, move focus where a screen reader user expects it:
// to the error summary if there is one, else to the page's heading.
document.addEventListener("htmx:afterSettle", function (event) {
  var main = document.getElementById("main");
  if (!main || !main.contains(event.detail.elt) && event.detail.elt !== main) return;
  var target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
});
// Tell screen reader users that a slow request is under way, and take that note away after
// (only that note: a response may have put its own announcement there).
var busyNote = "";
document.addEventListener("htmx:beforeRequest", function (event) {
  var status = document.getElementById("status");
  var note = event.detail.elt.querySelector && event.detail.elt.querySelector(".indicator");
  if (status && note) status.textContent = busyNote = note.textContent;
});
document.addEventListener("htmx:afterRequest", function () {
  var status = document.getElementById("status");
  if (status && busyNote && status.textContent === busyNote) status.textContent = "";
  busyNote = "";
});
