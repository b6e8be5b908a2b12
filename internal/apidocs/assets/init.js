// Starts Swagger UI on the page. A file of its own because the page's
// Content-Security-Policy allows no inline script.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.yaml",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    displayOperationId: true,
    docExpansion: "list",
    // Never ask the public validator service about the spec.
    validatorUrl: null,
    // "Try it out" sends the token entered under "Authorize" (bearerAuth);
    // it is kept only as long as the page is open.
    persistAuthorization: false,
    // The CSP lets the page talk only to the api that served it, and the
    // spec's server is a local default (localhost:8080): send "try it out"
    // requests to this api, whatever its address.
    requestInterceptor: function (req) {
      var u = new URL(req.url, window.location.href);
      if (u.origin !== window.location.origin) {
        req.url = window.location.origin + u.pathname + u.search;
      }
      return req;
    },
  });
});
