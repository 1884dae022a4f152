// The copy button beside a key shown once. Everything else in the portal
// works without JavaScript; without it, the key can still be selected and
// copied by hand.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(function (btn) {
    var input = document.getElementById(btn.getAttribute("data-copy"));
    var status = document.querySelector(".copy-status");
    if (!input) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var done = function (msg) { if (status) status.textContent = msg; };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(
          function () { done("Copied to the clipboard."); },
          function () { done("Could not copy: select the key and copy it by hand."); });
      } else {
        done(document.execCommand("copy") ? "Copied to the clipboard." : "Select the key and copy it by hand.");
      }
    });
  });
});
