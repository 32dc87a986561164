// bookbridge: follows the import jobs shown on the import page. Progressive enhancement
// only: without this file the page refreshes itself while a job runs.
(function () {
  "use strict";
  var sections = document.querySelectorAll("[data-import-job]");
  if (!sections.length || !window.fetch) { return; }

  function describe(p) {
    if (p.job_state === "dead") {
      return "The import stopped: " + (p.last_error || "it failed too many times") + ".";
    }
    var text;
    if (p.rows_total !== null && p.rows_total !== undefined) {
      text = p.rows_processed + " of " + p.rows_total + " rows imported…";
    } else if (p.job_state === "queued" && !p.attempts) {
      text = "Waiting to start…";
    } else {
      text = "Reading the file…";
    }
    if (p.last_error) { text += " (trying again after: " + p.last_error + ")"; }
    return text;
  }

  sections.forEach(function (section) {
    var id = section.getAttribute("data-import-job");
    var bar = section.querySelector("[data-job-bar]");
    var status = section.querySelector("[data-job-status]");
    if (!bar || !status) { return; }
    function poll() {
      fetch("/api/imports/" + encodeURIComponent(id), {
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (b) {
          if (b.state !== "queued" && b.state !== "running") {
            // Done (or unreadable): the page itself shows the summary and every failed row.
            window.location.reload();
            return;
          }
          var p = b.progress || {};
          if (p.rows_total !== null && p.rows_total !== undefined) {
            bar.max = Math.max(p.rows_total, 1);
            bar.value = Math.min(p.rows_processed, bar.max);
            bar.textContent = p.rows_processed + " of " + p.rows_total;
          }
          status.textContent = describe(p);
          if (p.job_state !== "dead") { window.setTimeout(poll, 1000); }
        })
        .catch(function () {
          status.textContent = "Could not check on the import; trying again…";
          window.setTimeout(poll, 3000);
        });
    }
    window.setTimeout(poll, 300);
  });
})();
