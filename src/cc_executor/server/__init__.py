"""The daemon: composition root, doors, security, uvicorn lifecycle (import submodules directly)."""
