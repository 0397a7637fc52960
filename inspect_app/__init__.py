"""Inspect: a self-hostable background coding agent platform."""

__version__ = "0.1.0"
