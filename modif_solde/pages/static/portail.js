// The portal's only script of its own: after a refused submit, focus goes to the error summary.
(function () {
  "use strict";
  var resume = document.getElementById("resume-erreurs");
  if (resume) {
    resume.focus();
  }
})();
