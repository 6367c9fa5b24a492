// The admin's small behaviours, loaded on every admin page (UNFOLD["SCRIPTS"]); no inline script.
(function () {
  "use strict";
  // Copy buttons beside shortened keys and ids (celaest/admin_display.py, short_key).
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".cel-copy");
    if (!button) { return; }
    event.preventDefault();
    event.stopPropagation();
    var done = function () {
      button.classList.add("cel-copied");
      window.setTimeout(function () { button.classList.remove("cel-copied"); }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(button.dataset.copy).then(done);
    } else {
      var area = document.createElement("textarea");
      area.value = button.dataset.copy;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  });
})();
