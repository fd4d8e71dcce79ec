"""The HTTPS face of the API: routes, content negotiation, authentication, limits, and process start-up."""
