// Consentry preference centre: small enhancements; the page works the same without them.
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

// Times in the reader's own time zone: each <time datetime> shows the server's UTC text until the browser
// formats it in the page's language and its own zone, naming the zone.
document.addEventListener("DOMContentLoaded", function () {
  if (typeof Intl === "undefined" || !Intl.DateTimeFormat) return;
  var format;
  try {
    format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short"
    });
  } catch (e) { return; }
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (t) {
    var at = new Date(t.getAttribute("datetime"));
    if (isNaN(at.getTime())) return;
    t.title = t.textContent;
    t.textContent = format.format(at);
  });
});
