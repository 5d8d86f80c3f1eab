/* Live ticket status: polls the page's live.json and copies the server's phrases into the page.
   No inline script (the CSP forbids it); no wording here: the server sends the strings.
   Unchanged data answers 304 (ETag), so polling every few seconds costs almost nothing. */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-live-url");
  var interval = parseInt(root.getAttribute("data-interval"), 10) || 5000;
  var etag = null;
  var failures = 0;
  var timer = null;
  var stopped = false;
  var note = document.querySelector("[data-live-note]");
  var liveWords = note ? note.textContent : "";
  // After this many failed polls in a row the page says its figures are no longer live.
  var STALE_AFTER = 2;

  function stale(on) {
    if (!note || stopped) { return; }
    var words = on ? (note.getAttribute("data-stale-note") || liveWords) : liveWords;
    if (note.textContent !== words) { note.textContent = words; }
  }

  function setText(name, value) {
    var nodes = document.querySelectorAll('[data-live="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].textContent !== String(value)) { nodes[i].textContent = String(value); }
    }
  }

  function setList(name, items, render) {
    var list = document.querySelector('[data-live-list="' + name + '"]');
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!items.length) { var empty = document.createElement("li"); empty.textContent = "—"; list.appendChild(empty); }
    for (var i = 0; i < items.length; i++) { list.appendChild(render(items[i])); }
  }

  function apply(data) {
    var shown = data.display || {};
    ["place", "status", "eta", "sla", "technician"].forEach(function (key) {
      if (key in shown) { setText(key, shown[key]); }
    });
    if ("queue_length" in data) { setText("queue_length", data.queue_length); }
    var sla = document.querySelector('[data-live-state="sla_state"]');
    if (sla) { sla.className = "state-" + (shown.sla_state || ""); }
    setList("reasons", shown.reasons || [], function (reason) {
      var li = document.createElement("li"); li.textContent = reason; return li;
    });
    setList("timeline", shown.timeline || [], function (item) {
      var li = document.createElement("li");
      var time = document.createElement("time"); time.textContent = item.at;
      li.appendChild(time); li.appendChild(document.createTextNode(" " + item.message));
      return li;
    });
    if (shown.is_open === false) {
      if (note) { note.textContent = shown.done_note || ""; }
      finish();
    }
  }

  function stop() { if (timer) { clearTimeout(timer); timer = null; } }
  function finish() { stopped = true; stop(); }

  function schedule() {
    stop();
    if (stopped) { return; }
    // Back off after failures (server busy, network down), up to a minute; resume normal pace on success.
    var wait = Math.min(interval * Math.pow(2, failures), 60000);
    timer = setTimeout(poll, wait);
  }

  function poll() {
    if (document.hidden) { schedule(); return; }
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (response) {
        if (response.status === 304) { failures = 0; stale(false); return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        // Signed out (here or "on every device"): the answer is the log-in page, not the ticket.
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || type.indexOf("json") === -1) { throw new Error("not the ticket's data"); }
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (data) { if (data) { apply(data); } failures = 0; stale(false); schedule(); })
      .catch(function () {
        failures = Math.min(failures + 1, 4);
        if (failures >= STALE_AFTER) { stale(true); }
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden && !stopped) { poll(); } });
  schedule();
})();
