"""Release versions: semver folders and Hub tags `v<version>`, and the next free one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from codelutra_data.errors import UserError

SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    m = SEMVER.match(text)
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


def tag_version(tag: str) -> Version | None:
    """The version of a release tag (`v1.2.3`), None for any other tag."""
    return parse_version(tag[1:]) if tag.startswith("v") else None


def next_version(taken: Iterable[Version]) -> str:
    """The next patch version after the newest taken, from 0.1.0."""
    taken = list(taken)
    if not taken:
        return "0.1.0"
    major, minor, patch = max(taken)
    return f"{major}.{minor}.{patch + 1}"


def versions_in(folder: Path) -> list[Version]:
    if not folder.is_dir():
        return []
    return sorted(v for p in folder.iterdir() if (v := parse_version(p.name)) is not None)


def local_versions(name: str, runs_dir: str | Path, releases_dir: str | Path) -> list[Version]:
    """Versions of this name already taken here, by a release or by a run."""
    return sorted(set(versions_in(Path(releases_dir) / name)) | set(versions_in(Path(runs_dir) / name)))


def choose_version(name: str, runs_dir: str | Path, releases_dir: str | Path, version: str | None = None,
                   resume: bool = False) -> str:
    """The given version; else, with `resume`, the newest unfinished run; else the next free patch version."""
    if version:
        return version
    runs = Path(runs_dir) / name
    if resume:
        for v in reversed(versions_in(runs)):
            text = ".".join(map(str, v))
            if not (Path(releases_dir) / name / text).exists():
                return text
        raise UserError(f"nothing to resume: no unfinished run of {name!r} under {runs}")
    return next_version(local_versions(name, runs_dir, releases_dir))


def previous_tag(tags: Iterable[str], version: str) -> str | None:
    """The highest release tag below this version."""
    mine = parse_version(version)
    older = sorted((k, t) for t in tags if (k := tag_version(t)) is not None and k < mine)
    return older[-1][1] if older else None
