"""Reading a release folder: its identity, its card and data files (what a push uploads), its build statistics,
per-task outcomes, and the pair files a trainer reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from codelutra_data.builders.release.versions import parse_version
from codelutra_data.cards import split_card
from codelutra_data.errors import UserError
from codelutra_data.files import read_text

DATA_DIR = "data"
PAIR_CONFIGS = ("pairs", "focal_pairs")


@dataclass
class Release:
    """A local release directory, read and checked."""

    path: Path
    name: str
    version: str
    build_id: str
    info: dict  # build_config.yaml
    metadata: dict  # the card's YAML header
    body: str  # the card's markdown after the header
    files: dict[str, Path]  # path in the Hub repo -> local file
    rows: dict[str, int]  # "config/split" -> rows

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def commit_title(self) -> str:
        return f"Release {self.name} {self.version} (build {self.build_id})"


def build_info(root: Path) -> dict:
    """build_config.yaml: the build id, model, limits, statistics and configuration."""
    info = _yaml_mapping(root / "build_config.yaml")
    try:
        info["config"]["name"], info["config"]["version"], info["build_id"]  # noqa: B018 - must be there
    except (KeyError, TypeError):
        raise UserError(f"{root / 'build_config.yaml'} is not a codelutra-data build config") from None
    return info


def _yaml_mapping(path: Path) -> dict:
    try:
        info = yaml.safe_load(read_text(path)) or {}
    except (yaml.YAMLError, ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise UserError(f"{path} is not a codelutra-data build config")
    return info


def _data_files(root: Path, metadata: dict) -> list[tuple[str, str, str]]:
    """(config, split, path) of every data file the card lists, each a file inside the release folder."""
    card = root / "README.md"
    found = []
    try:
        for cfg in metadata["configs"]:
            for entry in cfg["data_files"]:
                found.append((str(cfg["config_name"]), str(entry["split"]), str(entry["path"])))
    except (KeyError, TypeError):
        raise UserError(f"{card}: its `configs` must list config_name and data_files (split, path)") from None
    inside = root.resolve()
    for _, _, path in found:
        local = (root / path).resolve()
        if inside not in local.parents:
            raise UserError(f"{card} lists {path}, which is outside the release folder")
        if not local.is_file():
            raise UserError(f"{root} is not a complete release: {path} is missing")
    return found


def _parquet_rows(path: Path) -> int:
    """The rows a parquet file says it has; a truncated or foreign file is one line, before anything is sent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0][:200]})") from None


def read_release(path: str | Path) -> Release:
    """A release folder, checked whole: its identity, its card, and every data file it lists readable."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"no release at {root}: give a release folder, e.g. releases/<name>/<version>")
    for needed in ("README.md", "build_config.yaml"):
        if not (root / needed).is_file():
            raise UserError(f"{root} is not a complete release: {needed} is missing")
    info = build_info(root)
    name, version, build_id = info["config"]["name"], info["config"]["version"], info["build_id"]
    if parse_version(str(version)) is None:
        raise UserError(f"release version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    try:
        metadata, body = split_card(read_text(root / "README.md"))
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{root / 'README.md'} has a broken YAML header: {exc}") from None
    if not isinstance(metadata, dict) or not metadata.get("configs"):
        raise UserError(f"{root / 'README.md'} has no `configs` in its YAML header")
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    for config, split, data_path in _data_files(root, metadata):
        files[f"{DATA_DIR}/{data_path}"] = root / data_path
        rows[f"{config}/{split}"] = _parquet_rows(root / data_path)
    configs = [{**cfg, "data_files": [{**entry, "path": f"{DATA_DIR}/{entry['path']}"} for entry in cfg["data_files"]]}
               for cfg in metadata["configs"]]
    metadata = {**metadata, "configs": configs}
    files["build_config.yaml"] = root / "build_config.yaml"
    return Release(root, name, str(version), build_id, info, metadata, body, files, rows)


def release_stats(root: Path) -> dict:
    """The build's statistics (pairs, pass rate, timing, ...)."""
    return build_info(Path(root)).get("stats", {})


def task_outcomes(root: Path) -> tuple[int, int]:
    """Tasks whose samples all passed, and tasks where none did (first attempts only, for trajectories)."""
    import pyarrow.parquet as pq

    by_task: dict[str, list[bool]] = {}
    for path in sorted((Path(root) / "samples").glob("*.parquet")):
        table = pq.read_table(path)
        rounds = table.column("round").to_pylist() if "round" in table.column_names else [0] * table.num_rows
        for task, status, r in zip(table.column("task_id").to_pylist(), table.column("status").to_pylist(), rounds):
            if not r:
                by_task.setdefault(task, []).append(status == "passed")
    return sum(all(v) for v in by_task.values()), sum(not any(v) for v in by_task.values())


def pair_files(root: Path, split: str = "train", config: str | None = None) -> tuple[list[Path], dict]:
    """The parquet files of a release's pairs (`config`: `pairs`, or `focal_pairs` from a trajectories build; by
    default the first the release has) for one split, and the release's name, version and build id."""
    if config is not None and config not in PAIR_CONFIGS:
        raise UserError(f"unknown data config {config!r}: use one of {', '.join(PAIR_CONFIGS)}")
    present = [c for c in PAIR_CONFIGS if (root / c).is_dir()]
    if config is None and not present:
        raise UserError(f"{root} is not a release: it has no pairs/ or focal_pairs/ folder "
                        f"(expected releases/NAME/VERSION)")
    chosen = config or present[0]
    if chosen not in present:
        raise UserError(f"release {root} has no {chosen}/ config (it has: {', '.join(present) or 'none'})")
    files = sorted((root / chosen).glob(f"{split}-*.parquet"))
    if not files:
        have = sorted({p.name.split("-")[0] for p in (root / chosen).glob("*.parquet")})
        raise UserError(f"release {root} has no {split!r} split of {chosen} (it has: {', '.join(have) or 'none'})")
    identity = {"name": root.parent.name, "version": root.name, "build_id": ""}
    if (root / "build_config.yaml").is_file():
        info = _yaml_mapping(root / "build_config.yaml")
        cfg = info.get("config") if isinstance(info.get("config"), dict) else {}
        identity = {"name": cfg.get("name", identity["name"]), "version": str(cfg.get("version", identity["version"])),
                    "build_id": info.get("build_id", "")}
    return files, identity
