"""``python -m claude_context.cli``: the same as the ``claude-context`` command."""

from claude_context.cli import main

main()
