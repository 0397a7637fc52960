"""The extension's edges: who may frame which page, and what a picked element may carry."""

from __future__ import annotations

import json

from inspect_app.api.framing import frame_ancestors, with_frame_ancestors
from inspect_app.ui.selection import MAX_COMPONENTS, clean_selection
from inspect_app.ui.timeline import element_label

EXT = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"


def test_only_the_extension_page_may_be_framed_and_only_by_the_configured_origins() -> None:
    assert frame_ancestors("/extension", [EXT]) == f"frame-ancestors {EXT}"
    assert frame_ancestors("/extension/s1", [EXT, "https://x.example"]) == f"frame-ancestors {EXT} https://x.example"
    assert frame_ancestors("/extensions-evil", [EXT]) == "frame-ancestors 'none'"
    assert frame_ancestors("/settings", [EXT]) == "frame-ancestors 'none'"
    assert frame_ancestors("/extension", []) == "frame-ancestors 'none'"  # nobody configured: nobody frames it


def test_a_routes_own_policy_is_kept_but_never_its_frame_ancestors() -> None:
    none = "frame-ancestors 'none'"
    assert with_frame_ancestors("", none) == none
    assert with_frame_ancestors("default-src 'none'; sandbox", none) == f"default-src 'none'; sandbox; {none}"
    loose = "default-src 'self'; Frame-Ancestors *; img-src data:;"
    assert with_frame_ancestors(loose, none) == f"default-src 'self'; img-src data:; {none}"


def test_a_selection_keeps_known_fields_capped_and_anything_else_is_refused() -> None:
    raw = {
        "url": "https://shop.example/p/1",
        "title": "Shop",
        "selector": "#buy",
        "html": "<button>" + "x" * 10_000,
        "text": "Buy",
        "box": {"x": 1.6, "y": 2, "width": 30, "height": "tall"},
        "react": {"components": [{"name": "PriceTag", "source": {"file": "src/Price.tsx", "line": 12}}, {"bad": 1}]},
        "cookie": "session=secret",
    }
    clean = clean_selection(json.dumps(raw))
    assert clean is not None and "cookie" not in clean
    assert len(clean["html"]) == 4000 and clean["box"] == {"x": 1, "y": 2, "width": 30}
    assert clean["react"] == {"components": [{"name": "PriceTag", "source": {"file": "src/Price.tsx", "line": 12}}]}
    assert element_label(clean) == "#buy · PriceTag"
    many = {"selector": "div", "react": {"components": [{"name": f"C{i}"} for i in range(100)]}}
    assert len(clean_selection(json.dumps(many))["react"]["components"]) == MAX_COMPONENTS  # type: ignore[index]
    for junk in ("", "not json", "[1, 2]", json.dumps({"selector": ""}), "x" * 70_000):
        assert clean_selection(junk) is None
