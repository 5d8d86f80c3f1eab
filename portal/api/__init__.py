"""The JSON API at /api/v1 for clients' own tools (e.g. a monitoring system opening tickets itself)."""
