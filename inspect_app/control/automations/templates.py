"""The prompt an automation sends: its template rendered with jinja2's sandboxed environment.

The trigger's payload (a webhook body, a GitHub event) is written by whoever sends it: it is passed
as data, never as template source, so ``{{ 7 * 7 }}`` in a payload stays those characters; the
sandbox keeps the template itself from reaching Python internals (``__class__``, ``mro`` ...).
A field the payload lacks renders as nothing.

A template is a person's code, and a loop in it can run for ever or write gigabytes
(``range`` allows 100,000 steps, two nested loops 10^10). Rendering is bounded twice: the output is
gathered piece by piece and abandoned past the prompt's size; and a trace function on the thread
that renders (the template compiles to Python) ends it past ``RENDER_S`` seconds of work.
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from inspect_app.control.data.prompts import MAX_CONTENT_CHARS
from inspect_app.errors import InvalidInput

MAX_TEMPLATE_CHARS = 20_000
RENDER_S = 2.0


class _TooLong(Exception):
    """Rendering went past its time: raised inside the template's own code, to end it."""


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
    """The prompt; InvalidInput when it cannot be rendered, is empty, too long as rendered or takes
    longer than RENDER_S seconds. Call it off the event loop (it may take those seconds)."""
    deadline = time.monotonic() + RENDER_S

    def tracer(_frame: FrameType, _event: str, _arg: object) -> Any:
        if time.monotonic() > deadline:
            raise _TooLong
        return tracer

    pieces: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(tracer)  # this thread only, for this render
    try:
        for piece in _ENV.from_string(template).generate(**context):
            pieces.append(piece)
            size += len(piece)
            if size > 2 * MAX_CONTENT_CHARS:
                break  # too long already: what follows is not read (nor kept in memory)
    except _TooLong:
        raise InvalidInput(f"the prompt template took longer than {RENDER_S:.0f} s to render") from None
    except TemplateError as exc:  # SecurityError included: something the sandbox refused
        raise InvalidInput(f"the prompt template could not be rendered: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - what a template's expressions raise ({{ 1 / 0 }}, a bad filter argument)
        raise InvalidInput(f"the prompt template could not be rendered: {type(exc).__name__}: {exc}") from None
    finally:
        sys.settrace(previous)
    text = "".join(pieces).strip()
    if not text:
        raise InvalidInput("the prompt template rendered to nothing")
    if len(text) > MAX_CONTENT_CHARS:
        raise InvalidInput(f"the rendered prompt is longer than {MAX_CONTENT_CHARS} characters")
    return text
