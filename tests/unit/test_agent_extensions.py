from __future__ import annotations

import pytest

from inspect_app.control import agent_extensions as ext
from inspect_app.errors import InvalidInput


def test_secrets_are_references_in_the_config_and_values_beside_it() -> None:
    local = ext.Extension(
        "mcp_local", "db", {"command": ["db-mcp"], "environment": {"DB_URL": {"secret": "DB"}, "MODE": "ro"}}
    )
    remote = ext.Extension(
        "mcp_remote", "docs", {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": {"secret": "TOKEN"}}}
    )
    skill = ext.Extension("skill", "style", {"content": "Use tabs."})
    found = ext.for_sandbox([local, remote, skill], {"DB": "postgres://secret", "TOKEN": "Bearer abc"})
    assert found.mcp == {
        "db": {"type": "local", "command": ["db-mcp"], "environment": {"DB_URL": "{env:MCP_SECRET_1}", "MODE": "ro"}},
        "docs": {
            "type": "remote",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "{env:MCP_SECRET_2}"},
        },
    }
    assert found.env == {"MCP_SECRET_1": "postgres://secret", "MCP_SECRET_2": "Bearer abc"}
    assert (
        "secret" not in str(found.mcp) and found.hosts == ["mcp.example.com"] and found.skills == {"style": "Use tabs."}
    )


def test_a_server_whose_secret_is_missing_is_left_out_and_a_repositorys_own_wins() -> None:
    needs = ext.Extension("mcp_local", "db", {"command": ["x"], "environment": {"K": {"secret": "GONE"}}})
    found = ext.for_sandbox([needs], {})
    assert found.mcp == {} and found.env == {} and found.left_out == ["MCP server db: no secret GONE"]
    mine = ext.Extension("skill", "style", {"content": "Spaces."})
    assert ext.merged([ext.Extension("skill", "style", {"content": "Tabs."})], [mine]) == [mine]


@pytest.mark.parametrize(
    ("kind", "name", "config", "error"),
    [
        ("mcp_local", "db", {"command": "db-mcp --all"}, "list of 1-20 arguments"),
        ("mcp_local", "Bad Name", {"command": ["x"]}, "a name is 1-40"),
        ("mcp_remote", "docs", {"url": "file:///etc/passwd"}, "http(s) URL"),
        ("mcp_local", "db", {"command": ["x"], "environment": {"K": {"secret": 1}}}, 'a string or {"secret"'),
        ("skill", "style", {"content": ""}, "a skill's content"),
        ("plugin", "x", {}, "kind is one of"),
    ],
)
def test_a_wrong_extension_is_refused_with_what_is_wrong(kind: str, name: str, config: dict, error: str) -> None:
    with pytest.raises(InvalidInput, match=error.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        ext.check(kind, name, config)
