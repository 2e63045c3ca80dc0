"""The dashboard (``/ui``): server-rendered page shells that plain JavaScript fills from the
JSON API, with the static files served beside them. No build step; nothing from a CDN."""

from api.ui.pages import install

__all__ = ["install"]
