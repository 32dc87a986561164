// bookbridge: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Times in the reader's own locale; the server writes a UTC fallback.
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    fmt = null;
  }
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (fmt && !isNaN(d.getTime())) {
      t.title = t.textContent;
      t.textContent = fmt.format(d);
    }
  });

  // A new token: select it for copying.
  document.querySelectorAll("[data-select]").forEach(function (el) {
    el.addEventListener("focus", function () { el.select(); });
  });

  // Upload: drop files on the zone, and show progress while they are sent.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    var zone = form.querySelector("[data-dropzone]");
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector("[data-progress]");
    var status = form.querySelector("[data-status]");
    if (zone && input) {
      ["dragenter", "dragover"].forEach(function (ev) {
        zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (ev) {
        zone.addEventListener(ev, function () { zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (e) {
        e.preventDefault();
        if (e.dataTransfer && e.dataTransfer.files.length) {
          input.files = e.dataTransfer.files;
          status.textContent = e.dataTransfer.files.length + " file(s) ready to import";
        }
      });
    }
    if (!window.XMLHttpRequest || !window.FormData || !bar) { return; }
    form.addEventListener("submit", function (e) {
      if (!input.files.length) { return; }
      e.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      bar.hidden = false;
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) {
          var pct = Math.round((p.loaded / p.total) * 100);
          bar.value = pct;
          bar.textContent = pct + "%";
          status.textContent = pct < 100 ? "Uploading… " + pct + "%" : "Reading the files…";
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.responseURL && xhr.responseURL !== form.action && xhr.status < 400) {
          window.location.assign(xhr.responseURL);
        } else {
          document.open();
          document.write(xhr.responseText);
          document.close();
        }
      });
      xhr.addEventListener("error", function () {
        status.textContent = "The upload failed. Check the connection and try again.";
        bar.hidden = true;
      });
      xhr.send(new FormData(form));
    });
  });
})();
