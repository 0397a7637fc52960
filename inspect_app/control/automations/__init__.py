"""Automations: work that starts without anyone prompting (``docs/architecture.md``, "Automations").

``schedule`` (cron fire times), ``templates`` (the prompt, rendered sandboxed), ``filters`` (which
webhook bodies start a run) are pure; ``runner`` fires runs and follows them to their end.
"""
