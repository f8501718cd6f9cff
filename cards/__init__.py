"""Jinja templates for dataset cards, model cards, the leaderboard page and the refine report, and the one
environment that renders them (HTML templates autoescaped, every undefined name an error)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True,
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                                  default_for_string=False))


def render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)


def card(metadata: dict, body: str) -> str:
    """A Hub card: its YAML header (the Hub's dataset or model card fields), then the markdown."""
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{body}"


def split_card(text: str) -> tuple[dict, str]:
    """A card's YAML header and its markdown body; a header that does not parse is an error (ValueError), since
    merging would otherwise wipe it."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            try:
                header = yaml.safe_load(text[3:end]) or {}
            except yaml.YAMLError as exc:
                raise ValueError(str(exc).splitlines()[0]) from None
            if not isinstance(header, dict):
                raise ValueError("the YAML header is not a mapping")
            return header, text[end + 4:].lstrip("\n")
    return {}, text
