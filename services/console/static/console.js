// The console's own script (no inline script anywhere: the CSP forbids it).
// Long operations: a submit button with data-busy shows that text, is disabled and marked
// aria-busy until the next page arrives, so a slow upload or export cannot be sent twice.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) { return; }
    var button = event.submitter || form.querySelector("button[data-busy]");
    if (!button || !button.dataset.busy) { return; }
    if (button.name) {  // keep the pressed button's value in the submission
      var carry = document.createElement("input");
      carry.type = "hidden"; carry.name = button.name; carry.value = button.value;
      form.appendChild(carry);
    }
    button.setAttribute("aria-busy", "true");
    button.dataset.label = button.textContent;
    button.textContent = button.dataset.busy;
    window.setTimeout(function () { button.disabled = true; }, 0);
  });
  window.addEventListener("pageshow", function () {  // back button: buttons work again
    document.querySelectorAll("button[aria-busy=true]").forEach(function (b) {
      b.disabled = false; b.removeAttribute("aria-busy");
      if (b.dataset.label) { b.textContent = b.dataset.label; }
    });
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.target.querySelector && event.target.querySelector("button[type=submit]");
    if (el) { el.setAttribute("aria-busy", "true"); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var el = event.target.querySelector && event.target.querySelector("button[type=submit]");
    if (el) { el.removeAttribute("aria-busy"); }
  });
})();
