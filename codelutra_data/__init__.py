"""codelutra-data: execution-verified preference data for code models."""

__version__ = "0.1.0"
