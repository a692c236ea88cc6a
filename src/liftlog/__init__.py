"""liftlog: a self-hosted experimentation backend that speaks Optimizely's Event API."""

__version__ = "0.1.0"
