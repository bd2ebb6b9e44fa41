"""The HTTP API: a FastAPI app factory, routes, schemas and problem+json errors."""
