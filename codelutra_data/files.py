"""Files written whole or not at all, and a user's files (text, JSON, JSONL) read with one-line errors that name
the file and line."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from codelutra_data.errors import UserError


def partial_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place (a reader never sees it half-written)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


def partial_of(path: Path) -> tuple[str, int] | None:
    """(the final name, the writer's pid) when `path` is a partial file or folder, else None."""
    match = _PARTIAL.match(path.name)
    return (match["name"], int(match["pid"])) if match else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(folder: str | Path) -> list[Path]:
    """Partial files and folders in `folder` whose writer is gone (killed mid-write): nothing will finish them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (got := partial_of(p)) and got[1] != os.getpid() and not alive(got[1]))


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def writable_destination(path: str | Path, what: str) -> Path:
    """Refuse, before any work, a file destination that cannot be written: a folder, or under a file or a
    folder this user may not write to."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; name a file")
    writable_folder(path.parent, f"the folder of {what} {path}")
    return path


def writable_folder(path: str | Path, what: str) -> Path:
    """Refuse a folder that is a file, or that cannot be created or written to."""
    path = Path(path)
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{what} cannot be created: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what} is not writable: no permission to write in {probe}")
    return path


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write a file under a temporary name in its folder, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """A folder filled under a temporary name and renamed to `path` when the block ends without error; on any
    error (or a kill) no folder appears at `path`. `path` must not exist, unless as an empty folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, first_line: int = 1) -> UserError:
    line = first_line + data[:exc.start].count(b"\n")
    return UserError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); save the file as UTF-8")


def read_bytes(path: str | Path) -> bytes:
    """A user's file, or one line saying why it cannot be read (missing, a folder, no permission)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; expected a file") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_text(path: str | Path) -> str:
    """A user's text file as UTF-8; bytes that are not UTF-8 are one line naming the file and line, not a
    UnicodeDecodeError."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(Path(path), data, exc) from None


def read_json(path: str | Path) -> object:
    """A user's JSON file: not UTF-8, not JSON, or nested too deeply to parse is one line."""
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; brackets nested too deeply
        raise UserError(f"{path}: cannot parse its JSON ({type(exc).__name__}: {str(exc)[:100]})") from None


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not UTF-8 or not a JSON object is one
    clear error naming the line."""
    path = Path(path)
    rows = []
    for lineno, raw in enumerate(read_bytes(path).splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, raw, exc, lineno) from None
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:
            raise UserError(f"{path}:{lineno}: cannot parse its JSON ({type(exc).__name__}: {str(exc)[:100]})"
                            ) from None
        if not isinstance(item, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object")
        rows.append((lineno, item))
    return rows
