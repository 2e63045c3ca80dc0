"""A small local HTTP API that the example workflows call (``python -m examples.demo_api``)."""

from examples.demo_api.app import create_app

__all__ = ["create_app"]
