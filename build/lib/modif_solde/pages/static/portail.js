// The portal's only script of its own (no inline script: the CSP forbids it).
(function () {
  "use strict";

  // After a refused submit, focus goes to the error summary.
  var resume = document.getElementById("resume-erreurs");
  if (resume) {
    resume.focus();
  }

  // A field saves itself (htmx) as it loses focus: clicking "Enregistrer" straight from it
  // would post the form beside that save, with the draft version it is about to replace (and
  // be refused as stale). The form waits for the saves under way, which bring the new version.
  // (Counted by htmx's events: its "htmx-request" class is copied onto a swapped-in field
  // until the swap settles, so it cannot tell.)
  var enCours = 0;
  var enAttente = null;
  document.addEventListener("htmx:beforeRequest", function () {
    enCours += 1;
  });
  document.addEventListener("htmx:afterRequest", function () {
    enCours = Math.max(0, enCours - 1);
    // Once htmx has started any save queued behind this one.
    window.setTimeout(function () {
      if (enCours === 0 && enAttente) {
        var soumission = enAttente;
        enAttente = null;
        soumission.formulaire.requestSubmit(soumission.bouton);
      }
    }, 0);
  });
  document.addEventListener("submit", function (evenement) {
    var formulaire = evenement.target;
    if (enCours === 0 || !(formulaire instanceof HTMLFormElement)) {
      return;
    }
    evenement.preventDefault();
    enAttente = { formulaire: formulaire, bouton: evenement.submitter };
  });
})();
