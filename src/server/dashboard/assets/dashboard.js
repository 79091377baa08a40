// hookrelay dashboard: small progressive enhancements; every page works without them.
"use strict";
(function () {
  // Copy buttons: data-copy names the element whose text is copied.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });

  // Forms with data-confirm ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // The portal's welcome page moves on by itself (a same-site navigation).
  var follow = document.querySelector("a[data-auto-follow]");
  if (follow) { window.location.replace(follow.href); }

  // Live mode: the first page of the log, polled every 2 s while the button is pressed.
  var live = document.getElementById("live");
  var rows = document.getElementById("delivery-rows");
  var state = document.getElementById("live-state");
  if (live && rows) {
    var timer = null;
    var poll = function () {
      fetch(live.getAttribute("data-rows"), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          rows.innerHTML = html;
          if (state) { state.textContent = "updated " + new Date().toLocaleTimeString(); }
        })
        .catch(function () { if (state) { state.textContent = "live update failed"; } });
    };
    live.addEventListener("click", function () {
      var on = live.getAttribute("aria-pressed") !== "true";
      live.setAttribute("aria-pressed", on ? "true" : "false");
      if (on) { poll(); timer = setInterval(poll, 2000); }
      else { clearInterval(timer); timer = null; if (state) { state.textContent = ""; } }
    });
  }
})();
