// upwatch web: show <time datetime> in the viewer's time zone (the server
// renders UTC) and ask before destructive buttons. No framework; htmx
// refreshes the dashboard rows.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) return;
      t.title = t.textContent;
      t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    });
    var tz = document.getElementById("tz-note");
    if (tz) tz.textContent = "(converted to " + Intl.DateTimeFormat().resolvedOptions().timeZone + ")";
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSwap", function (e) { localTimes(e.target); });
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
  });
})();
