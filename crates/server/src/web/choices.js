// Consentry preference centre: a small enhancement; the page works the same without it.
// Ticking a purpose with none of its channels ticked ticks them all; unticking it unticks them;
// ticking a channel ticks its purpose, and unticking its last channel unticks the purpose.
"use strict";
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.dataset.purpose) return;
  var form = box.form;
  if (!form) return;
  var purpose = box.dataset.purpose;
  var channels = Array.prototype.filter.call(form.querySelectorAll("input[data-channel]"), function (c) {
    return c.dataset.purpose === purpose;
  });
  var main = Array.prototype.find.call(form.querySelectorAll("input[name=p]"), function (c) {
    return c.dataset.purpose === purpose;
  });
  if (!main || channels.length === 0) return;
  if (box === main) {
    var anyTicked = channels.some(function (c) { return c.checked; });
    if (!main.checked || !anyTicked) channels.forEach(function (c) { c.checked = main.checked; });
  } else {
    main.checked = channels.some(function (c) { return c.checked; });
  }
});
