"""``python -m claude_context.mcp_server``: the MCP server without the CLI's other commands."""

import sys

from claude_context.mcp_server.run import main

sys.exit(main())
