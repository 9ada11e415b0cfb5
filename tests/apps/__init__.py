"""ASGI apps the integration tests serve, one module per theme."""
