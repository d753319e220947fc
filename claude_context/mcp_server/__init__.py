"""MCP server: claude-context's engine as tools for coding agents (stdio and streamable HTTP).

Kept import-light: ``serve`` lives in ``run`` and builds everything when called.
"""
