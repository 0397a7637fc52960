"""A terminal client for Inspect (``python -m inspect_app.cli``, or ``.venv/bin/inspect-cli``):
sessions without a browser, on the public API and its change feed only."""
