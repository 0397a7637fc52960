"""Untrusted text (agent answers) as markdown: raw HTML stays text, links go only to http(s),
and nothing is fetched from elsewhere (images show their alt text).

``rx.markdown`` turns raw HTML on by default (the rehype-raw plugin): an answer's
``<iframe srcdoc=…>`` or ``<form action=…>`` would become live markup in every viewer's browser.
Here react-markdown runs without that plugin, so HTML in the text is shown as text; its URL
transform keeps only http(s) link targets (``javascript:``, ``data:`` and relative ones are
dropped, and a link without a target is unwrapped to its text) and drops every image source (a
remote image would tell its server who read the answer, and could carry what the agent put in
its URL).
"""

from __future__ import annotations

import reflex as rx
from reflex.vars.base import Var

# react-markdown's urlTransform(url, key, node): the value kept for an href/src attribute
HTTP_LINKS_ONLY: Var[str] = Var(
    _js_expr=r'((url, key) => key === "href" && /^https?:\/\//i.test(url) ? url : undefined)'
)
# allowElement(node): a link whose target was dropped is not a link (unwrapDisallowed keeps its text)
NO_DEAD_LINKS: Var[str] = Var(_js_expr='((node) => node.tagName !== "a" || typeof node.properties.href === "string")')


def _link(text: object, **props: object) -> rx.Component:
    return rx.link(text, is_external=True, **props)  # a new tab: the session stays open


def untrusted_markdown(text: str | Var[str]) -> rx.Component:
    plugins = rx.markdown.plugin
    return rx.markdown.root(
        text,
        component_map={"a": _link},
        remark_plugins=[plugins.math, plugins.gfm],
        rehype_plugins=[plugins.katex],  # no plugins.raw: HTML stays text
        custom_attrs={"urlTransform": HTTP_LINKS_ONLY, "allowElement": NO_DEAD_LINKS, "unwrapDisallowed": True},
    )
