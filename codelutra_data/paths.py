"""Where caches live; one place so tests can redirect them with an env var."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of our caches: $CODELUTRA_CACHE, else $XDG_CACHE_HOME/codelutra-data, else ~/.cache/codelutra-data."""
    env = os.environ.get("CODELUTRA_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "codelutra-data"
