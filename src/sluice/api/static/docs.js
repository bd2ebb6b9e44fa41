// Starts Swagger UI on /docs from Sluice's own copy (no CDN, no inline script: the page's
// Content-Security-Policy allows scripts from this origin only).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No badge from validator.swagger.io: the page loads nothing from elsewhere.
    validatorUrl: null,
  });
});
