"""The web pages: sign-in, results and the event debugger, under ``/ui`` (see `pages`)."""

from liftlog.web.pages import WebPages

__all__ = ["WebPages"]
