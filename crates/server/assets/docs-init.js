// Renders the API reference at /docs from the OpenAPI document the server serves beside it.
// A file of its own, not an inline script, so the page's Content-Security-Policy can say
// `script-src 'self'`.
"use strict";

window.ui = SwaggerUIBundle({
  // Relative to the page, so a server mounted under a path prefix still finds its document.
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  tryItOutEnabled: true,
  // The default asks validator.swagger.io to check the document: no requests leave this server.
  validatorUrl: null,
});
