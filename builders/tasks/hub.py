"""Task sets on the Hugging Face Hub: `hf:ORG/NAME[:CONFIG][@REVISION]` (or `hf:` and a folder `load_dataset`
reads), loaded with `datasets` (its cache, `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_TOKEN`).

A revision is always resolved to a commit, and the data loaded is that commit's: online by asking the Hub, offline
from the refs the cache recorded when the data was fetched. `datasets` itself, offline, ignores `revision=` and
hands back whichever cached copy is newest, so offline loads read the Arrow cache of the exact commit instead."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from codelutra_data.errors import UserError

PREFIX = "hf:"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HubSpec:
    """A parsed `hf:` spec. `repo` is a Hub id, or `folder` a local dataset folder (then no revision)."""

    repo: str
    config: str | None = None
    revision: str | None = None
    folder: str | None = None

    @property
    def name(self) -> str:
        return Path(self.folder).name if self.folder else self.repo.split("/")[-1]

    def pinned(self, commit: str) -> str:
        """The spec that loads exactly this data again."""
        if self.folder:
            return PREFIX + self.folder
        return PREFIX + self.repo + (f":{self.config}" if self.config else "") + f"@{commit}"


def is_hub_spec(spec: str) -> bool:
    return spec.startswith(PREFIX)


def parse(spec: str) -> HubSpec:
    body = spec[len(PREFIX):]
    if not body:
        raise UserError(f"{spec!r}: name a dataset, e.g. hf:ORG/NAME[:CONFIG][@REVISION]")
    folder = Path(os.path.expanduser(body))
    if body.startswith((".", "/", "~")) or folder.is_dir():
        if not folder.is_dir():
            raise UserError(f"{spec!r}: no dataset folder at {folder}")
        return HubSpec(repo="", folder=str(folder))
    body, _, revision = body.partition("@")
    repo, _, config = body.partition(":")
    if not _REPO.fullmatch(repo) or "--" in repo or ".." in repo:
        raise UserError(f"{spec!r}: not a Hub dataset id (expected hf:ORG/NAME[:CONFIG][@REVISION])")
    if "@" in spec and not revision or ":" in body and not config:
        raise UserError(f"{spec!r}: empty revision or config (expected hf:ORG/NAME[:CONFIG][@REVISION])")
    return HubSpec(repo=repo, config=config or None, revision=revision or None)


@dataclass
class HubData:
    """What a Hub source gave: rows per split, and the commit they came from ('' for a local folder)."""

    spec: HubSpec
    commit: str
    splits: dict[str, list[dict]]
    files: Path | None = None  # a local folder's files, for data the rows name by path

    def fetch_file(self, relative: str) -> Path:
        """A file of the dataset repository at the loaded commit (e.g. a database a SQL task names); a path that
        leaves the dataset (absolute, `..`, or in a local folder a link to a file elsewhere) is refused."""
        from codelutra_data.builders.tasks.sql_sources import database_in

        if self.spec.folder:
            return database_in(Path(self.spec.folder), relative)
        parts = PurePosixPath(relative.replace("\\", "/")).parts
        if not parts or parts[0] == "/" or ".." in parts or ":" in parts[0]:
            raise UserError(f"{relative!r} is not a file of hf:{self.spec.repo}: a task's db must be a path inside "
                            f"the dataset repository (relative, without `..`)")
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(self.spec.repo, relative, repo_type="dataset", revision=self.commit))
        except Exception as exc:  # noqa: BLE001 - not there, or not reachable: one line either way
            raise UserError(f"hf:{self.spec.repo}@{self.commit[:12]}: cannot get {relative} ({type(exc).__name__})"
                            ) from None
        return database_in(_repo_cache(self.spec.repo), str(path))  # the snapshot's link to its blob, both in it


def _offline() -> bool:
    import datasets

    return bool(datasets.config.HF_HUB_OFFLINE)


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _repo_cache(repo: str) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / ("datasets--" + repo.replace("/", "--"))


def _ref_file(repo: str, revision: str) -> Path:
    return _repo_cache(repo) / "refs" / revision


def cached_commit(repo: str, revision: str | None) -> str | None:
    """The commit `revision` named when it was last fetched here (a commit names itself)."""
    revision = revision or "main"
    if COMMIT.fullmatch(revision):
        return revision
    try:
        commit = _ref_file(repo, revision).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return commit if COMMIT.fullmatch(commit) else None


def _record_ref(repo: str, revision: str, commit: str) -> None:
    """Remember which commit a branch or tag named, as huggingface_hub's own cache does, for offline use."""
    if COMMIT.fullmatch(revision):
        return
    from codelutra_data.files import atomic_write

    path = _ref_file(repo, revision)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, commit)
    except OSError:
        pass  # a read-only cache: the next offline load says it cannot resolve the revision


def _fetch_hint(spec: HubSpec) -> str:
    return (f"run `codelutra-data tasks fetch hf:{spec.repo}{'@' + spec.revision if spec.revision else ''}` on a "
            f"connected machine, or set HF_ENDPOINT to a mirror")


def resolve_commit(spec: HubSpec) -> tuple[str, bool]:
    """The commit a spec's revision names now, and whether the Hub answered: asked of the Hub, or, offline or
    unreachable, the ref the cache recorded."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    revision = spec.revision or "main"
    label = f"hf:{spec.repo}"
    if _offline():
        commit = cached_commit(spec.repo, revision)
        if commit is None:
            raise UserError(f"{label}: offline (HF_HUB_OFFLINE) and revision {revision!r} was never fetched here: "
                            + _fetch_hint(spec))
        return commit, False
    try:
        commit = HfApi().dataset_info(spec.repo, revision=revision).sha
    except hub_errors.GatedRepoError:
        raise UserError(f"{label} is gated: accept its terms on the Hub, then set HF_TOKEN to a token of that "
                        f"account") from None
    except hub_errors.RevisionNotFoundError:
        raise UserError(f"{label} has no revision {revision!r} on {_endpoint()}") from None
    except hub_errors.RepositoryNotFoundError:
        raise UserError(f"{label}: no such dataset on {_endpoint()} (if it is private, set HF_TOKEN)") from None
    except hub_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "an error"
        raise UserError(f"{label}: the Hub at {_endpoint()} answered {status}") from None
    except Exception as exc:  # noqa: BLE001 - the transport's errors (refused, DNS, TLS, timeout)
        commit = cached_commit(spec.repo, revision)
        if commit is None:
            raise UserError(f"{label}: the Hub at {_endpoint()} cannot be reached ({type(exc).__name__}) and "
                            f"revision {revision!r} is not cached here: " + _fetch_hint(spec)) from None
        return commit, False
    if not commit or not COMMIT.fullmatch(commit):
        raise UserError(f"{label}: the Hub at {_endpoint()} gave no commit for revision {revision!r}")
    _record_ref(spec.repo, revision, commit)
    return commit, True


def _arrow_root(repo: str) -> Path:
    import datasets
    from datasets.naming import camelcase_to_snakecase

    namespace, name = repo.split("/")
    return Path(datasets.config.HF_DATASETS_CACHE) / f"{namespace}___{camelcase_to_snakecase(name)}"


def cached_configs(repo: str, commit: str) -> list[str]:
    """Configs of `repo` whose data at `commit` is in the Arrow cache."""
    root = _arrow_root(repo)
    return sorted(p.parents[2].name for p in root.glob(f"*/*/{commit}/dataset_info.json"))


def _from_cache(spec: HubSpec, commit: str):
    """The Arrow cache of exactly `commit`."""
    from datasets.packaged_modules.cache.cache import Cache

    configs = cached_configs(spec.repo, commit)
    config = spec.config or ("default" if "default" in configs or len(configs) != 1 else configs[0])
    if config not in configs:
        have = f" (cached configs: {', '.join(configs)})" if configs else ""
        raise UserError(f"hf:{spec.repo}: config {config!r} at {commit[:12]} is not cached here{have}: "
                        + _fetch_hint(spec))
    version = next((_arrow_root(spec.repo) / config).glob(f"*/{commit}")).parent.name
    builder = Cache(dataset_name=spec.repo.split("/")[-1], repo_id=spec.repo, config_name=config, version=version,
                    hash=commit)
    return builder.as_dataset()


def _quiet_datasets() -> None:
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()


def script_files(spec: HubSpec) -> list[str] | None:
    """The data files to read for a dataset whose repository holds a loading script (which datasets >= 4 refuses
    to run), as the format's adapter names them for the spec's config; None for every other dataset."""
    from codelutra_data.builders.tasks.adapters import adapters

    for adapter in adapters().values():
        files_for = adapter.script_repos.get(spec.repo)
        if files_for is not None:
            return files_for(spec.config)
    return None


def load(spec: HubSpec, keep: Callable[[dict], bool] | None = None) -> HubData:
    """Every split of the dataset at the resolved commit, as rows (those `keep` accepts, when given)."""
    import datasets

    _quiet_datasets()
    files = None if spec.folder else script_files(spec)
    if files is not None:
        commit, reachable = resolve_commit(spec)
        return HubData(spec, commit, {"test": list(_file_rows(spec, commit, files, reachable, keep))})
    if spec.folder:
        try:
            data = datasets.load_dataset(spec.folder)
        except Exception as exc:  # noqa: BLE001 - datasets raises many kinds for a folder it cannot read
            raise UserError(f"hf:{spec.folder}: datasets cannot load this folder ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
        return HubData(spec, "", {name: split.to_list() for name, split in data.items()}, Path(spec.folder))
    commit, reachable = resolve_commit(spec)
    data = _download(spec, commit) if reachable else _from_cache(spec, commit)
    return HubData(spec, commit, {name: [r for r in split.to_list() if keep is None or keep(r)]
                                  for name, split in data.items()})


def download_files(spec: HubSpec, commit: str, files: list[str], reachable: bool = True) -> list[Path]:
    """The repository's files at `commit`, from the hub cache (downloaded first when the Hub answers)."""
    from huggingface_hub import hf_hub_download

    paths = []
    for name in files:
        try:
            paths.append(Path(hf_hub_download(spec.repo, name, repo_type="dataset", revision=commit,
                                              local_files_only=not reachable or _offline())))
        except Exception as exc:  # noqa: BLE001 - not cached, not there, or the transfer broke: one line
            where = "is not cached here" if not reachable or _offline() else f"cannot be downloaded from {_endpoint()}"
            raise UserError(f"hf:{spec.repo}@{commit[:12]}: {name} {where} ({type(exc).__name__}): "
                            + _fetch_hint(spec)) from None
    return paths


def _file_rows(spec: HubSpec, commit: str, files: list[str], reachable: bool,
               keep: Callable[[dict], bool] | None) -> Iterator[dict]:
    """Rows of JSON-lines data files, read one line at a time so only the kept rows are held."""
    import json

    for path in download_files(spec, commit, files, reachable):
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise UserError(f"hf:{spec.repo}@{commit[:12]}: {path.name} line {number} is not JSON") from None
                if not isinstance(row, dict):
                    raise UserError(f"hf:{spec.repo}@{commit[:12]}: {path.name} line {number} is not a JSON object")
                if keep is None or keep(row):
                    yield row


def cached_files() -> list[dict]:
    """Datasets read as files (a loading script's data) whose files are in the hub cache here: repo, commit, the
    files and the refs that name the commit."""
    from codelutra_data.builders.tasks.adapters import adapters

    out = []
    for adapter in adapters().values():
        for repo in adapter.script_repos:
            snapshots = _repo_cache(repo) / "snapshots"
            for folder in sorted(snapshots.glob("*")) if snapshots.is_dir() else []:
                names = sorted(p.name for p in folder.glob("*.jsonl"))
                if COMMIT.fullmatch(folder.name) and names:
                    refs_dir = _repo_cache(repo) / "refs"
                    refs = sorted(str(p.relative_to(refs_dir)) for p in refs_dir.rglob("*") if p.is_file()
                                  and p.read_text(encoding="utf-8").strip() == folder.name) if refs_dir.is_dir() else []
                    out.append({"repo": repo, "config": "files: " + ",".join(names), "commit": folder.name,
                                "refs": refs})
    return out


def _download(spec: HubSpec, commit: str):
    import datasets

    try:
        return datasets.load_dataset(spec.repo, spec.config, revision=commit)
    except ValueError as exc:  # an unknown config, mostly
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"hf:{spec.repo}: {first[:300]}") from None
    except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError) as exc:
        raise UserError(f"hf:{spec.repo}@{commit[:12]}: {str(exc).splitlines()[0][:300]}") from None
    except RuntimeError as exc:  # e.g. "Dataset scripts are no longer supported"
        raise UserError(f"hf:{spec.repo}: datasets cannot load it ({str(exc).splitlines()[0][:200]})") from None
    except Exception as exc:  # noqa: BLE001 - the transport's errors mid-download
        raise UserError(f"hf:{spec.repo}: downloading from {_endpoint()} failed ({type(exc).__name__}): "
                        + _fetch_hint(spec)) from None


def cached_sets() -> list[dict]:
    """Every dataset in the Arrow cache here: repo, config, commit and the refs that name the commit."""
    import datasets

    root = Path(datasets.config.HF_DATASETS_CACHE)
    out = []
    for info in sorted(root.glob("*___*/*/*/*/dataset_info.json")):
        commit_dir = info.parent
        if not COMMIT.fullmatch(commit_dir.name):
            continue
        namespace, _, name = commit_dir.parents[2].name.partition("___")
        repo = _repo_from_cache_name(namespace, name)
        refs_dir = _repo_cache(repo) / "refs"
        refs = sorted(str(p.relative_to(refs_dir)) for p in refs_dir.rglob("*") if p.is_file()
                      and p.read_text(encoding="utf-8").strip() == commit_dir.name) if refs_dir.is_dir() else []
        out.append({"repo": repo, "config": commit_dir.parents[1].name, "commit": commit_dir.name, "refs": refs})
    return out


def _repo_from_cache_name(namespace: str, snake_name: str) -> str:
    """The Hub id of a cache folder: the Arrow cache snake-cases the name; the hub cache keeps it as written."""
    from huggingface_hub import constants

    for folder in Path(constants.HF_HUB_CACHE).glob(f"datasets--{namespace}--*"):
        name = folder.name.split("--", 2)[2]
        from datasets.naming import camelcase_to_snakecase

        if camelcase_to_snakecase(name) == snake_name:
            return f"{namespace}/{name}"
    return f"{namespace}/{snake_name}"
