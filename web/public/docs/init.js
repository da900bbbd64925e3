// Swagger UI over the description the gateway serves (same origin, no CDN).
window.ui = SwaggerUIBundle({ url: "/openapi.yaml", dom_id: "#swagger-ui", deepLinking: true });
