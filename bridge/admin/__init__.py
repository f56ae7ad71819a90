"""The HTTP server: health, metrics, the admin API and its OpenAPI document."""
