#!/usr/bin/env bash
# Independent-client check: the published MCP Inspector CLI (not our Python SDK) starts
# `claude-context serve` over stdio, lists the tools, and calls one.
# Usage: tests/inspector_check.sh   (needs node/npx and `claude-context` on PATH)
set -euo pipefail
INSPECTOR="@modelcontextprotocol/inspector@${INSPECTOR_VERSION:-2.12.0}"
SERVER="${CLAUDE_CONTEXT_BIN:-claude-context}"
export npm_config_loglevel="${npm_config_loglevel:-error}"  # no EBADENGINE noise on older node
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT

inspect() {
    npx -y "$INSPECTOR" --cli -e CLAUDE_CONTEXT_HOME="$home" "$SERVER" serve "$@"
}

tools="$(inspect --method tools/list)"
listed="$(inspect --method tools/call --tool-name list_codebases)"

python3 - "$tools" "$listed" <<'PY'
import json, sys

tools = {t["name"]: t for t in json.loads(sys.argv[1])["tools"]}
want = {"index_codebase", "search_code", "clear_index", "get_indexing_status", "list_codebases", "find_symbol", "find_references"}
missing = want - set(tools)
assert not missing, f"missing tools: {sorted(missing)}"
for name in want:
    assert tools[name].get("outputSchema", {}).get("type") == "object", f"{name}: no outputSchema"
assert tools["search_code"]["inputSchema"]["required"] == ["query"]  # path: one, several or all codebases
result = json.loads(sys.argv[2])
assert not result.get("isError") and result["structuredContent"] == {"codebases": []}, result
print(f"inspector: {len(tools)} tools listed ({', '.join(sorted(tools))}); list_codebases answered")
PY
