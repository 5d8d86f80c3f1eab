/* The dispatch board says when the queue has changed since it was drawn: it polls the board's
   fingerprint (304 while unchanged) and shows the page's own notice. A board in a background tab
   is simply drawn again when the dispatcher comes back to it; one being read is never redrawn
   under the reader's eyes. No wording here: the notice is in the page. */
(function () {
  "use strict";
  var notice = document.getElementById("board-changed");
  if (!notice || !window.fetch) { return; }
  var url = notice.getAttribute("data-tag-url");
  var drawn = notice.getAttribute("data-tag");
  var interval = parseInt(notice.getAttribute("data-interval"), 10) || 10000;
  var etag = null;
  var failures = 0;
  var changed = false;
  var title = document.title;

  function redraw() { window.location.reload(); }

  function show() {
    changed = true;
    if (document.hidden) { return; }  // redrawn when the tab is shown again
    notice.hidden = false;
    document.title = "\u2022 " + title;
  }

  function schedule() {
    if (changed) { return; }
    setTimeout(poll, Math.min(interval * Math.pow(2, failures), 60000));
  }

  function poll() {
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (response) {
        if (response.status === 304) { return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        if (data && data.tag !== drawn) { show(); }
        schedule();
      })
      .catch(function () { failures = Math.min(failures + 1, 3); schedule(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && changed && notice.hidden) { redraw(); }
  });
  schedule();
}());
