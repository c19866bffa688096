// Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  var body = document.body;
  function span(seconds) {
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) return body.dataset.spanD.replace("{d}", d).replace("{h}", h);
    if (h) return body.dataset.spanH.replace("{h}", h).replace("{m}", m);
    return body.dataset.spanM.replace("{m}", m).replace("{s}", s);
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      el.textContent = (left >= 0 ? body.dataset.left : body.dataset.over).replace("{span}", span(Math.abs(left)));
      el.classList.toggle("overdue", left < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    // The sign-in form sends the browser's time zone, the first time zone a user gets.
    document.querySelectorAll("[data-browser-time-zone]").forEach(function (el) {
      try { el.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* keep the default */ }
    });
    // A form sent once is not sent again by a second click (the server acts once anyway).
    document.querySelectorAll("form.action").forEach(function (form) {
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
      });
    });
    tick();
    setInterval(tick, 1000);
  });
})();
