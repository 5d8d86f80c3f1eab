/* A form is sent once: its submit buttons are disabled while the page waits for the answer, so a
   double click does not post twice (two API tokens, a file stored twice, a comment twice). The
   buttons are disabled just after the browser has read which one was pressed, and enabled again
   when Back shows the page from the browser's cache, or after a while if no answer came. Forms
   that read (GET, the board's filters) are left alone. The server still treats a repeat as one. */
(function () {
  "use strict";
  var RETRY_AFTER_MS = 15000;

  function buttons(form) {
    return form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
  }

  function setBusy(form, busy) {
    var list = buttons(form);
    for (var i = 0; i < list.length; i++) {
      list[i].disabled = busy;
      if (busy) { list[i].setAttribute("data-sending", ""); } else { list[i].removeAttribute("data-sending"); }
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || (form.getAttribute("method") || "get").toLowerCase() !== "post") { return; }
    setTimeout(function () {
      setBusy(form, true);
      setTimeout(function () { setBusy(form, false); }, RETRY_AFTER_MS);
    }, 0);
  });

  window.addEventListener("pageshow", function () {
    var sending = document.querySelectorAll("[data-sending]");
    for (var i = 0; i < sending.length; i++) { sending[i].disabled = false; sending[i].removeAttribute("data-sending"); }
  });
}());
