"""`push`: a release on the Hugging Face Hub as ONE commit, then ONE tag `v<version>`.

One `create_commit` (not `upload_folder`, which may split a large release into several commits) carries every
file of the release, deletes the data files the new version no longer has, and names the release and build
in its message; `parent_commit` makes a concurrent push fail instead of interleaving. The tag follows. So a
failure leaves either nothing or a whole, untagged commit, which `--resume` finds by its message and tags.
The card's YAML is merged with what is on the Hub (hand-added fields survive) and the card keeps a changelog.
The token comes from huggingface_hub's usual places (`HF_TOKEN`, the login cache) and is never printed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from codelutra_data.errors import UserError

DATA_DIR = "data"
CARD_START, CARD_END = "<!-- codelutra-data:card:start -->", "<!-- codelutra-data:card:end -->"
LOG_START, LOG_END = "<!-- codelutra-data:changelog:start -->", "<!-- codelutra-data:changelog:end -->"
# Card fields that describe the data: ours replace the Hub's. Every other field is the user's and survives.
OWNED_FIELDS = ("configs", "license", "size_categories", "source_datasets", "task_categories")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# Stats compared between versions in the changelog, where both builds have them.
_COMPARED_STATS = ("tasks", "samples", "pairs", "trajectories", "focal_pairs", "sft_conversations", "pass_rate",
                   "final_solve_rate")


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
    files: dict[str, Path]  # path in the repo -> local file
    rows: dict[str, int]  # "config/split" -> rows

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def commit_title(self) -> str:
        return f"Release {self.name} {self.version} (build {self.build_id})"


@dataclass
class PushResult:
    repo_id: str
    tag: str
    commit: str | None
    url: str
    created_repo: bool = False
    resumed: bool = False
    deleted: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)


def split_card(text: str) -> tuple[dict, str]:
    """A card's YAML header and its markdown body; a header that does not parse is an error, since merging
    would otherwise wipe it."""
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


def render_card(metadata: dict, body: str) -> str:
    header = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{body}"


def read_release(path: str | Path) -> Release:
    import pyarrow.parquet as pq

    root = Path(path)
    if not root.is_dir():
        raise UserError(f"no release at {root}: give a release folder, e.g. releases/<name>/<version>")
    for needed in ("README.md", "build_config.yaml"):
        if not (root / needed).is_file():
            raise UserError(f"{root} is not a complete release: {needed} is missing")
    try:
        info = yaml.safe_load((root / "build_config.yaml").read_text(encoding="utf-8")) or {}
        config = info["config"]
        name, version, build_id = config["name"], config["version"], info["build_id"]
    except (yaml.YAMLError, KeyError, TypeError):
        raise UserError(f"{root / 'build_config.yaml'} is not a codelutra-data build config") from None
    if not _SEMVER.match(str(version)):
        raise UserError(f"release version {version!r} is not semver (MAJOR.MINOR.PATCH)")
    try:
        metadata, body = split_card((root / "README.md").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{root / 'README.md'} has a broken YAML header: {exc}") from None
    if not metadata.get("configs"):
        raise UserError(f"{root / 'README.md'} has no `configs` in its YAML header")
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    configs = []
    for cfg in metadata["configs"]:
        data_files = []
        for entry in cfg["data_files"]:
            local = root / entry["path"]
            if not local.is_file():
                raise UserError(f"{root} is not a complete release: {entry['path']} is missing")
            in_repo = f"{DATA_DIR}/{entry['path']}"
            files[in_repo] = local
            rows[f"{cfg['config_name']}/{entry['split']}"] = pq.read_metadata(local).num_rows
            data_files.append({**entry, "path": in_repo})
        configs.append({**cfg, "data_files": data_files})
    metadata = {**metadata, "configs": configs}
    files["build_config.yaml"] = root / "build_config.yaml"
    return Release(root, name, str(version), build_id, info, metadata, body, files, rows)


def merge_metadata(remote: dict, ours: dict) -> dict:
    """The Hub card's fields with ours laid over the data-describing ones; tags are the union."""
    merged = dict(remote)
    for key in OWNED_FIELDS:
        if key in ours:
            merged[key] = ours[key]
    if "tags" in ours:
        theirs = [t for t in (remote.get("tags") or []) if isinstance(t, str)]
        merged["tags"] = theirs + [t for t in ours["tags"] if t not in theirs]
    for key, value in ours.items():
        merged.setdefault(key, value)
    return merged


def _between(text: str, start: str, end: str) -> tuple[str, str, str] | None:
    i, j = text.find(start), text.find(end)
    if i == -1 or j == -1 or j < i:
        return None
    return text[:i], text[i + len(start):j], text[j + len(end):]


def merge_body(remote_body: str, ours: str, entry: str) -> str:
    """Our card between markers, the user's text around it kept, and the changelog with the new entry first."""
    old_entries = ""
    log = _between(remote_body, LOG_START, LOG_END)
    if log is not None:
        before, old_entries, after = log
        before = re.sub(r"\n*## Changelog\s*$", "\n", before)
        remote_body = before.rstrip("\n") + "\n" + after.lstrip("\n")
    card = _between(remote_body, CARD_START, CARD_END)
    if card is not None:
        prefix, _, suffix = card
    else:  # a card written by hand (or the Hub's default): ours goes first, theirs is kept below
        prefix, suffix = "", remote_body
    changelog = f"## Changelog\n\n{LOG_START}\n{entry.strip()}\n\n{old_entries.strip()}".rstrip() + f"\n{LOG_END}\n"
    parts = [prefix.strip("\n"), f"{CARD_START}\n{ours.strip()}\n{CARD_END}", changelog, suffix.strip("\n")]
    return "\n\n".join(p for p in parts if p) + "\n"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changelog_entry(release: Release, previous: dict | None, previous_tag: str | None, date: str) -> str:
    """What changed in this version: counts, model, and the build config against the previous tag."""
    lines = [f"### {release.tag} ({date}, build `{release.build_id}`)", ""]
    lines.append("- rows: " + ", ".join(f"{k} {v}" for k, v in release.rows.items()))
    stats, old_stats = release.info.get("stats") or {}, (previous or {}).get("stats") or {}
    compared = []
    for key in _COMPARED_STATS:
        if isinstance(stats.get(key), (int, float)):
            value = f"{stats[key]:.1%}" if key.endswith("rate") else str(stats[key])
            if isinstance(old_stats.get(key), (int, float)) and old_stats[key] != stats[key]:
                old = f"{old_stats[key]:.1%}" if key.endswith("rate") else str(old_stats[key])
                value += f" ({previous_tag}: {old})"
            compared.append(f"{key} {value}")
    if compared:
        lines.append("- " + ", ".join(compared))
    model = release.info.get("model") or {}
    model_text = f"`{model.get('model_id')}` (revision `{model.get('revision')}`)"
    old_model = (previous or {}).get("model") or {}
    if previous is not None and (old_model.get("model_id"), old_model.get("revision")) != \
            (model.get("model_id"), model.get("revision")):
        model_text += f", was `{old_model.get('model_id')}` (revision `{old_model.get('revision')}`)"
    lines.append(f"- model: {model_text}")
    if previous is None:
        lines.append("- first release in this repository" if previous_tag is None else
                     f"- config: {previous_tag} has no build_config.yaml to compare with")
    else:
        new, old = _flat(release.info.get("config") or {}), _flat(previous.get("config") or {})
        changes = [f"`{k}` {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(new) | set(old))
                   if k != "version" and new.get(k) != old.get(k)]
        lines.append(f"- config vs {previous_tag}: " + ("; ".join(changes) if changes else "unchanged"))
    return "\n".join(lines)


def _version_key(tag: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(tag[1:] if tag.startswith("v") else "")
    return tuple(int(x) for x in m.groups()) if m else None


def previous_tag(tags: list[str], version: str) -> str | None:
    """The highest release tag below this version."""
    mine = _version_key(f"v{version}")
    older = sorted((k, t) for t in tags if (k := _version_key(t)) is not None and k < mine)
    return older[-1][1] if older else None


class Hub:
    """The few Hub calls a push makes, with errors turned into one line that never holds the token."""

    def __init__(self, token: str | None = None):
        from huggingface_hub import HfApi, get_token

        self.token = token or get_token()
        if not self.token:
            raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access)")
        self.api = HfApi(token=self.token)
        self.endpoint = self.api.endpoint

    def error(self, exc: BaseException, doing: str, repo_id: str) -> UserError:
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            text = f"{repo_id} was not found on {self.endpoint}, or this token cannot see it"
        elif status == 401:
            text = "the Hugging Face token was refused (401): check HF_TOKEN or run `hf auth login`"
        elif status == 403:
            text = f"this token may not write to {repo_id} (403): use a token with write access to that namespace"
        elif status == 412:
            text = (f"{repo_id} changed while pushing (its main branch moved): nothing was committed; "
                    "run the push again")
        elif isinstance(exc, HfHubHTTPError):
            server = getattr(exc, "server_message", None) or str(exc).splitlines()[0]
            text = f"the Hub refused to {doing} ({status}): {server}"
        else:
            text = f"cannot reach the Hub at {self.endpoint} to {doing}: {type(exc).__name__}: {str(exc)[:200]}"
        return UserError(text.replace(self.token, "***"))

    def whoami(self) -> dict:
        try:
            return self.api.whoami()
        except Exception as exc:  # noqa: BLE001 - any failure is one line
            raise self.error(exc, "check the token", "your account") from None

    def tags_and_head(self, repo_id: str) -> tuple[dict[str, str], str | None] | None:
        """The repo's tags (name -> commit) and main's head, or None when the repo does not exist."""
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = self.api.list_repo_refs(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            raise self.error(exc, "read the repository's refs", repo_id) from None
        head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        return {t.name: t.target_commit for t in refs.tags}, head


def _check_write_role(user: dict) -> None:
    role = ((user.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise UserError("this Hugging Face token is read-only: create one with write access")


def propose_version(repo_id: str, local_versions: list[tuple[int, int, int]], token: str | None = None) -> str:
    """The next patch version after the newest of the Hub's release tags and the local releases."""
    hub = Hub(token)
    found = hub.tags_and_head(repo_id)
    remote = [k for t in (found[0] if found else {}) if (k := _version_key(t)) is not None]
    known = remote + list(local_versions)
    if not known:
        return "0.1.0"
    major, minor, patch = max(known)
    return f"{major}.{minor}.{patch + 1}"


def check_can_push(token: str | None = None) -> str:
    """Before a long build that ends in a push: the token works and may write. Returns the user name."""
    hub = Hub(token)
    user = hub.whoami()
    _check_write_role(user)
    return user.get("name", "")


def plan_lines(release: Release, repo_id: str) -> list[str]:
    """What a push would do, computed locally: nothing is sent (no token needed)."""
    lines = [f"push {release.path} -> dataset {repo_id} (created if missing)",
             f"one commit: {release.commit_title!r}, with parent_commit = main's head at push time"]
    for in_repo, local in release.files.items():
        lines.append(f"  add {in_repo} ({local.stat().st_size} bytes)")
    lines.append("  add README.md (this release's card merged with the card on the Hub, plus the changelog)")
    lines.append(f"  delete every file under {DATA_DIR}/ that this release does not have")
    lines.append(f"then tag {release.tag} on that commit (refused if the tag exists)")
    return lines


def push(release_path: str | Path, repo_id: str, *, private: bool = False, resume: bool = False,
         token: str | None = None, log=None) -> PushResult:
    """Publish a release as one commit plus its version tag (see the module docstring)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    log = log or (lambda message: None)
    if not re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", repo_id):
        raise UserError(f"{repo_id!r} is not a repository id: give <namespace>/<name>, e.g. my-org/my-sql")
    release = read_release(release_path)
    hub = Hub(token)
    user = hub.whoami()
    _check_write_role(user)
    api = hub.api
    url = f"{hub.endpoint}/datasets/{repo_id}"
    found = hub.tags_and_head(repo_id)
    created = False
    if found is None:
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        except Exception as exc:  # noqa: BLE001
            raise hub.error(exc, "create the repository", repo_id) from None
        created = True
        log(f"created {'private ' if private else ''}dataset repository {repo_id}")
        found = hub.tags_and_head(repo_id) or ({}, None)
    tags, head = found
    try:
        history = api.list_repo_commits(repo_id, repo_type="dataset") if head else []
    except Exception as exc:  # noqa: BLE001
        raise hub.error(exc, "list the repository's commits", repo_id) from None
    ours = next((c for c in history if c.title.strip() == release.commit_title), None)
    if release.tag in tags:
        if resume and ours is not None and tags[release.tag] == ours.commit_id:
            log(f"{release.tag} is already on {repo_id} (commit {ours.commit_id[:12]}): nothing to do")
            return PushResult(repo_id, release.tag, ours.commit_id, url, created, resumed=True)
        raise UserError(f"tag {release.tag} already exists on {repo_id}: a release is immutable; "
                        "build a new version instead")
    if ours is not None:
        if not resume:
            raise UserError(f"an earlier push of this release committed {ours.commit_id[:12]} to {repo_id} but did "
                            f"not tag it: rerun with --resume to tag it")
        _tag(hub, repo_id, release, ours.commit_id)
        log(f"found the commit of an earlier push ({ours.commit_id[:12]}) and tagged it {release.tag}")
        return PushResult(repo_id, release.tag, ours.commit_id, url, created, resumed=True)

    remote_files = _list_files(hub, repo_id, head) if head else []
    remote_card = _download(hub, repo_id, "README.md", head) if "README.md" in remote_files else ""
    try:
        remote_meta, remote_body = split_card(remote_card)
    except ValueError as exc:
        raise UserError(f"the card (README.md) on {repo_id} has a YAML header that does not parse ({exc}): fix it "
                        "on the Hub first, so that merging keeps its fields") from None
    prev = previous_tag(tags, release.version)
    prev_info = None
    if prev is not None:
        text = _download(hub, repo_id, "build_config.yaml", prev)
        prev_info = (yaml.safe_load(text) or None) if text else None
    date = dt.datetime.now(dt.timezone.utc).date().isoformat()
    card = render_card(merge_metadata(remote_meta, release.metadata),
                       merge_body(remote_body, release.body, changelog_entry(release, prev_info, prev, date)))
    stale = sorted(f for f in remote_files if f.startswith(f"{DATA_DIR}/") and f not in release.files)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in release.files.items()]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    log(f"committing {len(release.files) + 1} files ({len(stale)} stale data files deleted) to {repo_id}")
    try:
        info = api.create_commit(repo_id, operations, commit_message=release.commit_title,
                                 commit_description=f"codelutra-data release {release.name} {release.version}",
                                 repo_type="dataset", parent_commit=head)
    except Exception as exc:  # noqa: BLE001
        error = hub.error(exc, "commit the release", repo_id)
        if not isinstance(exc, _http_error_types()):
            raise UserError(f"{error}; the commit happened whole or not at all and nothing is tagged: rerun with "
                            "--resume") from None
        raise error from None
    _tag(hub, repo_id, release, info.oid)
    log(f"committed {info.oid[:12]} and tagged it {release.tag}")
    return PushResult(repo_id, release.tag, info.oid, url, created, deleted=stale, uploaded=list(release.files))


def _http_error_types() -> tuple[type, ...]:
    from huggingface_hub.errors import HfHubHTTPError

    return (HfHubHTTPError,)


def _tag(hub: Hub, repo_id: str, release: Release, commit: str) -> None:
    try:
        hub.api.create_tag(repo_id, tag=release.tag, revision=commit, repo_type="dataset",
                           tag_message=release.commit_title)
    except Exception as exc:  # noqa: BLE001
        error = hub.error(exc, f"tag {release.tag}", repo_id)
        raise UserError(f"{error}; committed {commit[:12]} but it is not tagged: rerun with --resume") from None


def _list_files(hub: Hub, repo_id: str, revision: str) -> list[str]:
    try:
        return hub.api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    except Exception as exc:  # noqa: BLE001
        raise hub.error(exc, "list the repository's files", repo_id) from None


def _download(hub: Hub, repo_id: str, filename: str, revision: str) -> str:
    """A small file's text at a revision ('' if it is not there)."""
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hub.api.hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision)
    except EntryNotFoundError:
        return ""
    except Exception as exc:  # noqa: BLE001
        raise hub.error(exc, f"read {filename}", repo_id) from None
    return Path(path).read_text(encoding="utf-8")
