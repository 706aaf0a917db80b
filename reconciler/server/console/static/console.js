// The console's one script: live updates of a flywheel page and the "differences only" switch.
// Pages work without it; it only saves a reload.
(function () {
  "use strict";

  function poll(root) {
    var url = root.getAttribute("data-live");
    var reloadWhenIdle = root.hasAttribute("data-reload-when-idle");
    var state = root.getAttribute("data-state");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return schedule(10000); }
          if (reloadWhenIdle) {
            if (!data.busy) { window.location.reload(); return; }
          } else if (data.state !== state) {
            state = data.state;
            Object.keys(data.fragments).forEach(function (name) {
              var target = document.getElementById("live-" + name);
              var focused = document.activeElement && target && target.contains(document.activeElement);
              if (target && !focused) { target.innerHTML = data.fragments[name]; }
            });
            root.setAttribute("data-state", state);
            if (!data.busy) {  // "iteration asked for" and the like: done with now
              document.querySelectorAll("[data-transient]").forEach(function (el) { el.remove(); });
            }
          }
          schedule(data.busy ? 1500 : 5000);
        })
        .catch(function () { schedule(10000); });
    }
    function schedule(ms) { window.setTimeout(tick, document.hidden ? Math.max(ms, 15000) : ms); }
    schedule(1500);
  }

  function differencesOnly() {
    var box = document.getElementById("diff-only");
    if (!box) { return; }
    var apply = function () {
      document.querySelectorAll("#label-table tr[data-same]").forEach(function (row) {
        row.hidden = box.checked;
      });
    };
    box.addEventListener("change", apply);
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(poll);
    differencesOnly();
  });
})();
