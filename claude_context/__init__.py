"""claude-context: local-first semantic code search for coding agents."""

__version__ = "0.1.0"
