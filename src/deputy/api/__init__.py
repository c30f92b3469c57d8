"""The headless REST API (FastAPI, versioned under /v1). Thin: every route calls one service."""
