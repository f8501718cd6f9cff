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
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from codelutra_data.builders.release import (DATA_DIR, Release, next_version, previous_tag, read_release,
                                             tag_version)
from codelutra_data.builders.release.card import changelog_entry, merge_body, merge_metadata
from codelutra_data.cards import card, split_card
from codelutra_data.errors import UserError
from codelutra_data.files import read_text
from codelutra_data.models.spec import HUB_ID

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
    found = Hub(token).tags_and_head(repo_id)
    remote = [k for t in (found[0] if found else {}) if (k := tag_version(t)) is not None]
    return next_version(remote + list(local_versions))


def check_can_push(token: str | None = None) -> str:
    """Before a long build that ends in a push: the token works and may write. Returns the user name."""
    hub = Hub(token)
    user = hub.whoami()
    _check_write_role(user)
    return user.get("name", "")


def check_repo_id(repo_id: str, option: str = "--repo") -> str:
    """A dataset repo id as the Hub takes it: <namespace>/<name>, checked by huggingface_hub's own rules (the ones
    its every call applies), so a dry run, a build that ends in a push and the push itself refuse the same ids."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    why = "give <namespace>/<name>, e.g. my-org/my-sql"
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        why = f"{str(exc).splitlines()[0].rstrip('.')}; {why}"
    else:
        if HUB_ID.match(repo_id):
            return repo_id
    raise UserError(f"{option} {repo_id!r} is not a Hub repository id: {why}")


def plan_lines(release: Release, repo_id: str) -> list[str]:
    """What a push would do, computed locally: nothing is sent (no token needed). The repo id is checked as a
    push checks it."""
    check_repo_id(repo_id)
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
    check_repo_id(repo_id)
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
    text = card(merge_metadata(remote_meta, release.metadata),
                merge_body(remote_body, release.body, changelog_entry(release, prev_info, prev, date)))
    stale = sorted(f for f in remote_files if f.startswith(f"{DATA_DIR}/") and f not in release.files)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in release.files.items()]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=text.encode("utf-8")))
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
    return read_text(path)  # a card written elsewhere may not be UTF-8: one line, not a traceback
