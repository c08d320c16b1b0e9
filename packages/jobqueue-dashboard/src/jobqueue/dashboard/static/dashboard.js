// jobqueue dashboard: live regions over server-sent events, and confirmations.
// A static file (no inline script), so the page's CSP can stay default-src 'self'.
(function () {
  "use strict";

  function connect(region) {
    var source = new EventSource(region.getAttribute("data-live"));
    var problem = document.getElementById("live-problem");
    source.addEventListener("refresh", function (event) {
      // htmx.swap also processes hx-* attributes in the new HTML.
      htmx.swap(region, event.data, { swapStyle: "innerHTML" });
      if (problem) { problem.hidden = true; }
    });
    source.addEventListener("problem", function (event) {
      if (problem) { problem.innerHTML = event.data; problem.hidden = false; }
    });
    source.addEventListener("done", function () { source.close(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Delegated, so forms that arrive in a live update ask too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.hasAttribute("data-confirm") &&
        !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(connect);
  });
})();
