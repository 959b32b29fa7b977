// ops-worker console: shows times in the browser's zone and keeps the page
// live by fetching its main part every few seconds and swapping it in.
// The pages work without it.
"use strict";
(function () {
  var POLL_MS = 2500;

  function relative(ms) {
    var s = Math.round(ms / 1000), a = Math.abs(s), v;
    if (a < 5) return "now";
    if (a < 120) v = a + " s";
    else if (a < 7200) v = Math.floor(a / 60) + " min";
    else if (a < 172800) v = Math.floor(a / 3600) + " h";
    else v = Math.floor(a / 86400) + " d";
    return s > 0 ? "in " + v : v + " ago";
  }

  function localize(root) {
    var now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = new Date(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      var sameDay = new Date(now).toDateString() === t.toDateString();
      var local = sameDay
        ? t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : t.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
      el.textContent = local + " (" + relative(t.getTime() - now) + ")";
    });
  }

  function busy(main) {
    // Do not replace a form someone is filling in.
    var a = document.activeElement;
    return a && main.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
  }

  function poll(main) {
    if (document.hidden || busy(main)) return schedule(main);
    fetch(location.href, { headers: { "X-Console-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        // Signed out, or an error page: stop, a reload shows why.
        if (!r.ok || r.headers.get("X-Console-Fragment") !== "1") return null;
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        if (!busy(main)) {
          var open = Array.prototype.map.call(main.querySelectorAll("details[open]"), function (d) {
            return d.closest("[id]") ? d.closest("[id]").id : null;
          });
          main.innerHTML = html;
          open.forEach(function (id) {
            var d = id && document.getElementById(id);
            var det = d && d.querySelector("details");
            if (det) det.open = true;
          });
          localize(main);
        }
        schedule(main);
      })
      .catch(function () { schedule(main); });
  }

  function schedule(main) {
    setTimeout(function () { poll(main); }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    var main = document.querySelector("main[data-live]");
    if (main) schedule(main);
  });
})();
