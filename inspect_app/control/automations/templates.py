"""The prompt an automation sends: its template rendered with jinja2's sandboxed environment.

The trigger's payload (a webhook body, a GitHub event) is written by whoever sends it: it is passed
as data, never as template source, so ``{{ 7 * 7 }}`` in a payload stays those characters; the
sandbox keeps the template itself from reaching Python internals (``__class__``, ``mro`` ...).
A field the payload lacks renders as nothing.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from inspect_app.control.data.prompts import MAX_CONTENT_CHARS
from inspect_app.errors import InvalidInput

MAX_TEMPLATE_CHARS = 20_000

_ENV = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False)


def check(template: str) -> None:
    """InvalidInput (with the line) when ``template`` does not parse."""
    if not template.strip():
        raise InvalidInput("the prompt template is empty")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(f"the prompt template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        _ENV.parse(template)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"the prompt template does not parse (line {exc.lineno}): {exc.message}") from None


def render(template: str, **context: Any) -> str:
    """The prompt; InvalidInput when it cannot be rendered or is empty or too long as rendered."""
    try:
        text = _ENV.from_string(template).render(**context).strip()
    except TemplateError as exc:  # SecurityError included: something the sandbox refused
        raise InvalidInput(f"the prompt template could not be rendered: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - what a template's expressions raise ({{ 1 / 0 }}, a bad filter argument)
        raise InvalidInput(f"the prompt template could not be rendered: {type(exc).__name__}: {exc}") from None
    if not text:
        raise InvalidInput("the prompt template rendered to nothing")
    if len(text) > MAX_CONTENT_CHARS:
        raise InvalidInput(f"the rendered prompt is longer than {MAX_CONTENT_CHARS} characters")
    return text
