// StackSense console: live regions refreshed by short polling, local times, connection state.
// No framework and no build step. Each element with data-live="URL" is re-fetched every
// data-refresh-ms (body attribute) and its content replaced, unless the user is typing in it.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10) || 5000;
  var conn = document.getElementById("conn");
  var tz = (Intl.DateTimeFormat().resolvedOptions().timeZone) || "local time";

  function localTimes(root) {
    var items = root.querySelectorAll("time[data-local]");
    for (var i = 0; i < items.length; i++) {
      var d = new Date(items[i].getAttribute("datetime"));
      if (!isNaN(d)) {
        items[i].title = items[i].textContent;
        items[i].textContent = d.toLocaleString(undefined, {
          year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
          minute: "2-digit", second: "2-digit", timeZoneName: "short"});
      }
    }
  }

  function setState(ok, text) {
    if (!conn) { return; }
    conn.className = "conn " + (ok ? "ok" : "lost");
    conn.textContent = text;
    body.setAttribute("data-connection", ok ? "ok" : "lost");
  }

  function refresh(region) {
    var url = region.getAttribute("data-live");
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, Math.max(every, 4000)) : null;
    fetch(url, {credentials: "same-origin", headers: {"X-Console-Live": "1"},
                signal: ctl ? ctl.signal : undefined})
      .then(function (resp) {
        if (resp.headers.get("X-Console-Partial") !== "1") {
          throw new Error(resp.status === 200 ? "logged out" : "HTTP " + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        if (!region.contains(document.activeElement)) {
          region.innerHTML = html;
          localTimes(region);
        }
        setState(true, "live · " + tz);
      })
      .catch(function (err) {
        var why = (err && err.message === "logged out") ? "session ended: log in again"
                                                        : "connection lost: retrying";
        setState(false, why);
      })
      .then(function () { if (timer) { clearTimeout(timer); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var regions = document.querySelectorAll("[data-live]");
    if (regions.length) { setState(true, "live · " + tz); }
    for (var i = 0; i < regions.length; i++) {
      (function (region) {
        setInterval(function () {
          if (!document.hidden) { refresh(region); }
        }, every);
      })(regions[i]);
    }
  });
})();
