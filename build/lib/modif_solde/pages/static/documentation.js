// Swagger UI on the service's OpenAPI document (development only), started from this file:
// the CSP allows no inline script, and every file comes from the service itself.
(function () {
  "use strict";
  var cible = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: cible.getAttribute("data-openapi"),
    domNode: cible,
    deepLinking: true,
    // Never send the document to swagger.io's online validator.
    validatorUrl: null,
  });
})();
