"""Config files: YAML mapping onto a dataclass, with command-line values taking precedence."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from codelutra_data.errors import UserError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option: value")
    return data


def merge(cls: type[T], file_values: dict, overrides: dict[str, Any]) -> T:
    """Build `cls` from defaults < config file < explicit overrides (None means 'not given')."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise UserError(f"unknown config option(s): {', '.join(unknown)}")
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None and k in names}}
    return cls(**values)
