"""The ASGI application: collector routes, management API, results API, web pages."""
