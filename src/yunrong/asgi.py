"""ASGI entry point for uvicorn: ``yunrong.asgi:app``."""

from yunrong.app import create_app

app = create_app()
