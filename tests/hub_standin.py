"""A small stand-in for the Hugging Face Hub's HTTP API, for tests (the real Hub cannot be reached from CI).

It speaks the subset of the Hub API that huggingface_hub 2.4 and datasets 5.2 call for dataset repos (model and
Space repos work the same way): whoami, repo creation, README metadata validation, preupload, the git-lfs batch API
(basic transfer), NDJSON commits, tags and branches, refs, repo info, tree, paths-info, commit listing and
`resolve` downloads (HEAD and GET, with Range). Errors follow the Hub's conventions, which the clients map to their
exceptions: `X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound` on 404 (401 when unauthenticated),
401 for an unknown token, 403 for a read token or a foreign namespace, 409 for an existing repo/tag/branch and
412 for a stale `parentCommit`. No Xet: clients must run with `HF_HUB_DISABLE_XET=1`.

Stdlib only (PyYAML, when importable, parses README metadata into `cardData` and for /api/validate-yaml).

    with HubStandin(tmp_path / "hub", tokens={"hf_w": ("alice", "write")}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_w", "HF_HUB_DISABLE_XET": "1", ...}
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is a dependency of the project
    yaml = None

# The LFS rules of the .gitattributes the Hub puts in the initial commit of a new repo.
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.lz4",
    "*.mds", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar",
    "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    "*.mp3", "*.ogg", "*.wav", "*.flac", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.gif", "*.mp4",
)
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
URL_PREFIX = {"dataset": "datasets/", "space": "spaces/", "model": ""}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
OID_RE = re.compile(r"[0-9a-f]{40}")


class RecordedRequest(NamedTuple):
    method: str
    path: str  # as sent, percent-encoding kept, without the query string
    query: str
    has_auth: bool


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}  # more fields of the JSON error body


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git_sha1(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


def _pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _blob_oid(entry: dict) -> str:
    """The git blob id of a file in the repo's git tree: the LFS pointer's for LFS files, as on the Hub."""
    return _git_sha1("blob", _pointer(entry["oid"], entry["size"])) if entry["lfs"] else entry["oid"]


def _lfs_rules(gitattributes: bytes | None) -> list[str]:
    rules = []
    for line in (gitattributes or b"").decode("utf-8", "replace").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            rules.append(parts[0])
    return rules


def _matches_lfs(path: str, rules: list[str]) -> bool:
    # gitattributes: a pattern without a slash matches the file name at any depth, otherwise the path from the root
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in r else name, r.lstrip("/")) for r in rules)


def _front_matter(text: str) -> dict | None:
    """The YAML metadata block of a README (None when there is none); raises ValueError when it does not parse."""
    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", text, re.S)
    if m is None or yaml is None:
        return None
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        raise ValueError(f"Invalid YAML in README.md metadata: {e}") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError("README.md metadata must be a YAML mapping")
    return data


def _flag(query: dict, name: str) -> bool:
    return query.get(name, ["false"])[0].lower() in ("1", "true", "yes")


def _split_rev(rest: list[str]) -> tuple[str, str]:
    """(revision, path) from the segments after e.g. /resolve/: the revision is one percent-encoded segment
    (`refs%2Fconvert%2Fparquet`), but the Hub also accepts `refs/convert/parquet`, `refs/pr/1` unencoded."""
    if len(rest) >= 3 and rest[0] == "refs" and rest[1] in ("convert", "pr", "heads", "tags"):
        return "/".join(rest[:3]), "/".join(rest[3:])
    return (rest[0] if rest else "main"), "/".join(rest[1:]).strip("/")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; also makes http.server answer `Expect: 100-continue`
    server_version = "HubStandin/1.0"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _serve(self):
        self.server.hub._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve


class HubStandin:
    """The stand-in server. `tokens`: token -> (user, "read" | "write"); `orgs`: user -> [organisations].

    Hooks for tests: `url`, `requests` (RecordedRequest per request), `bodies` (the raw body of each request, same
    order), `errors` (tracebacks of internal errors, answered 500), `drop_next()`, and `refs()`, `commits()`,
    `files()`, `export_git()` to inspect what was pushed.
    """

    def __init__(self, root, tokens: dict | None = None, orgs: dict | None = None, *,
                 lfs_threshold: int = 10 * 1024 * 1024, page_size: int | None = None):
        self.root = Path(root)
        for sub in ("repos", "blobs", "lfs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._tokens = dict(tokens or {})
        self._orgs = {user: list(names) for user, names in (orgs or {}).items()}
        self.lfs_threshold = lfs_threshold
        self.page_size = page_size  # None: the Hub's (1000 tree entries, 50 when expanded or for commits)
        self.requests: list[RecordedRequest] = []
        self.bodies: list[bytes] = []
        self.responses: list[tuple[int, dict, bytes] | None] = []  # per request; None where dropped
        self.errors: list[str] = []
        self._drops: list[tuple[str, re.Pattern, str]] = []
        self._before: list[tuple[str, re.Pattern, object]] = []
        self._uploads: dict[str, tuple[tuple[str, str], str, int]] = {}  # nonce -> (repo key, sha256, size)
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], dict] = {}
        for path in sorted((self.root / "repos").glob("*/*/*.json")):
            repo = json.loads(path.read_text())
            self._repos[(repo["type"], repo["id"])] = repo
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # ----- lifecycle -----
    def start(self) -> HubStandin:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-standin",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HubStandin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- test hooks -----
    def drop_next(self, method: str, path_regex: str, when: str = "before") -> None:
        """Close the connection of the next `method` request whose path matches `path_regex` (re.search, path as
        sent) without any response: `before` handling it (nothing changes) or `after` (its effect is kept)."""
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        with self._lock:
            self._drops.append((method.upper(), re.compile(path_regex), when))

    def commit_before_next(self, method: str, path_regex: str, repo_id: str, files: dict[str, bytes],
                           repo_type: str = "dataset") -> None:
        """Just before the next matching request is handled, someone else commits `files` to main: a push racing
        ours, so a `parentCommit` read before it is stale when ours arrives."""
        def commit() -> None:
            repo = self._repos[(repo_type, repo_id)]
            head = repo["branches"]["main"]
            snapshot = {**repo["commits"][head]["files"],
                        **{path: self._store(data, False) for path, data in files.items()}}
            repo["branches"]["main"] = self._add_commit(repo, head, snapshot, "A concurrent push", "", "bob")
            self._save(repo)

        with self._lock:
            self._before.append((method.upper(), re.compile(path_regex), commit))

    def seed(self, repo_id: str, files: dict[str, bytes], *, title: str = "Upload", tag: str | None = None,
             oid: str | None = None, author: str = "upstream", private: bool = False,
             repo_type: str = "dataset") -> str:
        """Commit `files` (path -> bytes; files of the previous commit are kept) to main of `repo_id`, creating the
        repo if needed: how a test puts an upstream dataset "on the Hub". `oid` gives the commit the id the real
        Hub's commit has, so code pinned to that revision finds it. Returns the commit id."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = {"type": repo_type, "id": repo_id, "private": private, "createdAt": _now(), "commits": {},
                        "order": [], "branches": {}, "tags": {}, "tagMessages": {}, "lfs": []}
                repo["branches"]["main"] = self._add_commit(
                    repo, None, {".gitattributes": self._store(GITATTRIBUTES, lfs=False)}, "initial commit", "",
                    author)
                self._repos[(repo_type, repo_id)] = repo
            head = repo["branches"]["main"]
            rules = _lfs_rules(self._read(repo["commits"][head]["files"][".gitattributes"]))
            snapshot = {**repo["commits"][head]["files"],
                        **{p: self._store(d, _matches_lfs(p, rules)) for p, d in files.items()}}
            new = self._add_commit(repo, head, snapshot, title, "", author)
            if oid is not None:
                if not OID_RE.fullmatch(oid) or oid in repo["commits"]:
                    raise ValueError(f"bad or existing commit id {oid!r}")
                repo["commits"][oid] = {**repo["commits"].pop(new), "oid": oid}
                repo["order"][-1] = new = oid
            repo["branches"]["main"] = new
            if tag is not None:
                repo["tags"][tag] = new
            self._save(repo)
            return new

    def refs(self, repo_id: str, repo_type: str = "dataset") -> dict:
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            return {"branches": dict(repo["branches"]), "tags": dict(repo["tags"])}

    def commits(self, repo_id: str, revision: str | None = None, repo_type: str = "dataset") -> list[dict]:
        """Newest first: every commit of the repo, or the history of `revision`."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            oids = self._history(repo, self._rev(repo, revision)) if revision else repo["order"][::-1]
            return [{**{k: v for k, v in repo["commits"][o].items() if k != "files"},
                     "paths": sorted(repo["commits"][o]["files"])} for o in oids]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            snapshot = repo["commits"][self._rev(repo, revision)]["files"]
            return {path: self._read(entry) for path, entry in sorted(snapshot.items())}

    def export_git(self, repo_id: str, dest, repo_type: str = "dataset") -> dict[str, str]:
        """Write the repo as a git repository at `dest` (commits replayed in order, same messages, authors and
        dates; LFS files as their real content), its tags and branches, main checked out. Returns hub oid -> git sha."""
        with self._lock:
            repo = json.loads(json.dumps(self._repos[(repo_type, repo_id)]))
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        base_env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_AUTHOR_NAME": "hub-standin", "GIT_AUTHOR_EMAIL": "standin@localhost",
                    "GIT_COMMITTER_NAME": "hub-standin", "GIT_COMMITTER_EMAIL": "standin@localhost"}

        def git(*args, data: bytes | None = None, **env) -> str:
            done = subprocess.run(["git", *args], cwd=dest, input=data, capture_output=True, check=True,
                                  env={**base_env, **env})
            return done.stdout.decode().strip()

        git("init", "-q", "-b", "main")
        index = str(dest / ".git" / "standin-index")
        blobs: dict[tuple, str] = {}
        shas: dict[str, str] = {}
        for oid in repo["order"]:
            commit = repo["commits"][oid]
            lines = []
            for path, entry in sorted(commit["files"].items()):
                key = (entry["lfs"], entry["oid"])
                if key not in blobs:
                    blobs[key] = git("hash-object", "-w", "--stdin", data=self._read(entry))
                lines.append(f"100644 {blobs[key]}\t{path}\n")
            if os.path.exists(index):
                os.remove(index)
            git("update-index", "--index-info", data="".join(lines).encode(), GIT_INDEX_FILE=index)
            tree = git("write-tree", GIT_INDEX_FILE=index)
            when = f"@{int(datetime.fromisoformat(commit['date'].replace('Z', '+00:00')).timestamp())} +0000"
            who = {"GIT_AUTHOR_NAME": commit["author"], "GIT_AUTHOR_DATE": when,
                   "GIT_AUTHOR_EMAIL": f"{commit['author']}@users.noreply.huggingface.co",
                   "GIT_COMMITTER_NAME": commit["author"], "GIT_COMMITTER_DATE": when,
                   "GIT_COMMITTER_EMAIL": f"{commit['author']}@users.noreply.huggingface.co"}
            parent = ["-p", shas[commit["parent"]]] if commit["parent"] else []
            message = commit["title"] + (f"\n\n{commit['message']}" if commit["message"] else "")
            shas[oid] = git("commit-tree", tree, *parent, "-F", "-", data=message.encode(), **who)
        if os.path.exists(index):
            os.remove(index)
        for name, oid in repo["branches"].items():
            git("update-ref", f"refs/heads/{name}", shas[oid])
        for name, oid in repo["tags"].items():
            message = repo["tagMessages"].get(name)
            git("tag", *(["-a", "-m", message] if message else []), name, shas[oid])
        git("symbolic-ref", "HEAD", "refs/heads/main")
        git("reset", "-q", "--hard")
        return shas

    # ----- storage -----
    def _save(self, repo: dict) -> None:
        path = self.root / "repos" / (repo["type"] + "s") / f"{repo['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(repo, indent=1))
        os.replace(tmp, path)

    def _store(self, data: bytes, lfs: bool) -> dict:
        oid = hashlib.sha256(data).hexdigest() if lfs else _git_sha1("blob", data)
        path = self.root / ("lfs" if lfs else "blobs") / oid
        if not path.exists():
            path.write_bytes(data)
        return {"oid": oid, "size": len(data), "lfs": lfs}

    def _read(self, entry: dict) -> bytes:
        return (self.root / ("lfs" if entry["lfs"] else "blobs") / entry["oid"]).read_bytes()

    def _add_commit(self, repo: dict, parent: str | None, files: dict, title: str, message: str, author: str) -> str:
        date = _now()
        root_tree = self._tree_oid(files, "")
        body = (f"tree {root_tree}\n" + (f"parent {parent}\n" if parent else "")
                + f"author {author} {date}\ncommitter {author} {date}\n\n{title}\n\n{message}\n")
        oid = _git_sha1("commit", body.encode())
        while oid in repo["commits"]:  # two identical commits in the same millisecond
            oid = _git_sha1("commit", (body + oid).encode())
        repo["commits"][oid] = {"oid": oid, "parent": parent, "title": title, "message": message,
                                "author": author, "date": date, "files": files}
        repo["order"].append(oid)
        return oid

    @staticmethod
    def _tree_oid(files: dict, prefix: str) -> str:
        """An id for the content of folder `prefix` ("" for the root), changing whenever a file below it does."""
        base = prefix + "/" if prefix else ""
        inside = sorted((p, _blob_oid(e)) for p, e in files.items() if p.startswith(base))
        return hashlib.sha1(json.dumps(inside).encode()).hexdigest()

    # ----- lookups -----
    def _rev(self, repo: dict, revision: str | None) -> str:
        rev = revision or "main"
        for prefix, table in (("refs/heads/", "branches"), ("refs/tags/", "tags")):
            if rev.startswith(prefix) and rev[len(prefix):] in repo[table]:
                return repo[table][rev[len(prefix):]]
        if rev in repo["branches"]:
            return repo["branches"][rev]
        if rev in repo["tags"]:
            return repo["tags"][rev]
        if OID_RE.fullmatch(rev) and rev in repo["commits"]:
            return rev
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _history(self, repo: dict, oid: str | None) -> list[str]:
        out = []
        while oid:
            out.append(oid)
            oid = repo["commits"][oid]["parent"]
        return out

    def _user(self, headers) -> tuple[str, str] | None:
        auth = headers.get("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self._tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self._tokens[token.strip()]

    def _member(self, who, namespace: str) -> bool:
        return who is not None and (namespace == who[0] or namespace in self._orgs.get(who[0], []))

    def _can_write(self, who, namespace: str) -> None:
        if who is None:
            raise HubError(401, "You must be authenticated to do this: pass a token")
        if who[1] != "write":
            raise HubError(403, "This token has read access only: a write token is needed")
        if not self._member(who, namespace):
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace}")

    def _repo(self, who, rtype: str, repo_id: str, write: bool = False) -> dict:
        repo = self._repos.get((rtype, repo_id))
        if repo is None or (repo["private"] and not self._member(who, repo_id.split("/")[0])):
            raise HubError(404 if who else 401, "Repository not found", "RepoNotFound")
        if write:
            self._can_write(who, repo_id.split("/")[0])
        return repo

    # ----- HTTP plumbing -----
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        try:
            body = self._read_body(handler)
        except (ValueError, OSError):
            handler.close_connection = True
            return
        with self._lock:
            self.requests.append(RecordedRequest(method, split.path, split.query, "Authorization" in handler.headers))
            self.bodies.append(body)
            self.responses.append(None)
            index = len(self.requests) - 1
            drop = next((d for d in self._drops if d[0] == method and d[1].search(split.path)), None)
            if drop is not None:
                self._drops.remove(drop)
            before = next((b for b in self._before if b[0] == method and b[1].search(split.path)), None)
            if before is not None:
                self._before.remove(before)
                before[2]()
        if drop is not None and drop[2] == "before":
            handler.close_connection = True  # closed with nothing sent: the client sees a dropped connection
            return
        try:
            with self._lock:
                try:
                    status, headers, payload = self._route(method, split.path, parse_qs(split.query),
                                                           handler.headers, body)
                except json.JSONDecodeError:
                    raise HubError(400, "The request body is not valid JSON") from None
        except HubError as e:
            status, payload = e.status, json.dumps({"error": e.message, **e.extra}).encode()
            headers = {"Content-Type": "application/json",
                       "X-Error-Message": e.message.encode("ascii", "replace").decode(), **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
        except Exception:
            self.errors.append(traceback.format_exc())
            sys.stderr.write(f"hub stand-in: internal error on {method} {split.path}\n{self.errors[-1]}")
            status, headers = 500, {"Content-Type": "application/json"}
            payload = b'{"error": "internal error in the hub stand-in"}'
        if drop is not None:  # "after": applied, but the client never hears back
            handler.close_connection = True
            return
        self.responses[index] = (status, headers, payload)
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(payload)

    @staticmethod
    def _read_body(handler) -> bytes:
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _route(self, method: str, path: str, query: dict, headers, body: bytes):
        segs = [unquote(s) for s in path.split("/")[1:]]
        if method == "PUT" and segs[0] == "lfs-upload" and len(segs) == 2:
            return self._lfs_put(segs[1], body)  # a pre-signed url: no Authorization needed, as on S3
        who = self._user(headers)
        if segs[0] == "api":
            if segs[1:] == ["whoami-v2"] and method == "GET":
                return self._whoami(who)
            if segs[1:] == ["repos", "create"] and method == "POST":
                return self._create_repo(who, json.loads(body or b"{}"))
            if segs[1:] == ["validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body or b"{}"))
            if len(segs) >= 4 and segs[1] in REPO_TYPES:
                return self._repo_api(method, who, REPO_TYPES[segs[1]], f"{segs[2]}/{segs[3]}", segs[4:],
                                      query, headers, body)
        else:
            rtype = REPO_TYPES.get(segs[0]) if segs[0] in ("datasets", "spaces") else None
            rest = segs[1:] if rtype else segs
            rtype = rtype or "model"
            if len(rest) >= 3 and rest[1].endswith(".git") and rest[2:5] == ["info", "lfs", "objects"]:
                repo = self._repo(who, rtype, f"{rest[0]}/{rest[1][:-4]}", write=True)
                if rest[5:] == ["batch"] and method == "POST":
                    return self._lfs_batch(repo, json.loads(body or b"{}"))
                if rest[5:] == ["verify"] and method == "POST":
                    return self._lfs_verify(repo, json.loads(body or b"{}"))
            if len(rest) >= 4 and rest[2] == "resolve" and method in ("GET", "HEAD"):
                repo = self._repo(who, rtype, f"{rest[0]}/{rest[1]}")
                return self._resolve(repo, rest[3:], headers)
        raise HubError(404, f"Not found: {method} {path} (not served by the hub stand-in)")

    @staticmethod
    def _json(data, status: int = 200, headers: dict | None = None):
        return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()

    # ----- account and repo creation -----
    def _whoami(self, who):
        if who is None:
            raise HubError(401, "Invalid username or password.")
        user, role = who
        return self._json({
            "type": "user", "id": hashlib.sha1(user.encode()).hexdigest()[:24], "name": user, "fullname": user,
            "email": f"{user}@example.com", "emailVerified": True, "isPro": False, "canPay": False,
            "orgs": [{"type": "org", "name": org, "fullname": org, "roleInOrg": "write"}
                     for org in self._orgs.get(user, [])],
            "auth": {"type": "access_token", "accessToken": {"displayName": "hub-standin", "role": role}},
        })

    def _create_repo(self, who, payload: dict):
        if who is None:
            raise HubError(401, "You must be authenticated to create a repo")
        name, namespace = payload.get("name") or "", payload.get("organization") or who[0]
        rtype = payload.get("type") or "model"
        if not NAME_RE.fullmatch(name) or rtype not in URL_PREFIX:
            raise HubError(400, f"Invalid repo name or type: {name!r} ({rtype})")
        self._can_write(who, namespace)
        repo_id = f"{namespace}/{name}"
        url = f"{self.url}/{URL_PREFIX[rtype]}{repo_id}"
        if (rtype, repo_id) in self._repos:
            # huggingface_hub's create_repo(exist_ok=True) reads the url from this 409's body
            raise HubError(409, f"You already created this {rtype} repo", extra={"url": url})
        repo = {"type": rtype, "id": repo_id, "private": payload.get("visibility") == "private"
                or payload.get("private") is True, "createdAt": _now(), "commits": {}, "order": [],
                "branches": {}, "tags": {}, "tagMessages": {}, "lfs": []}
        gitattributes = self._store(GITATTRIBUTES, lfs=False)
        repo["branches"]["main"] = self._add_commit(repo, None, {".gitattributes": gitattributes},
                                                    "initial commit", "", who[0])
        self._repos[(rtype, repo_id)] = repo
        self._save(repo)
        return self._json({"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _validate_yaml(self, payload: dict):
        try:
            _front_matter(payload.get("content") or "")
        except ValueError as e:
            return self._json({"errors": [{"message": str(e)}], "warnings": []}, status=400)
        return self._json({"errors": [], "warnings": []})

    # ----- /api/{type}s/{namespace}/{name}/... -----
    def _repo_api(self, method, who, rtype, repo_id, segs, query, headers, body):
        action, rest = (segs[0] if segs else ""), segs[1:]
        write = method in ("POST", "DELETE") and action not in ("paths-info",)
        repo = self._repo(who, rtype, repo_id, write=write)
        if method == "GET" and action in ("", "revision"):
            return self._info(repo, rest[0] if rest else "main", _flag(query, "blobs"))
        if method == "GET" and action == "refs":
            return self._json(self._refs_json(repo))
        if method == "GET" and action == "tree":
            return self._tree(repo, rest, query)
        if method == "POST" and action == "paths-info":
            return self._paths_info(repo, rest, headers, body)
        if method == "GET" and action == "commits":
            return self._commits(repo, rest, query)
        if method == "POST" and action == "preupload":
            return self._preupload(repo, rest, json.loads(body or b"{}"))
        if method == "POST" and action == "commit":
            if _flag(query, "create_pr"):
                raise HubError(400, "create_pr is not supported by the hub stand-in")
            return self._commit(repo, who, rest, body)
        if action in ("tag", "branch") and rest:
            return self._ref(repo, method, action, "/".join(rest), json.loads(body or b"{}") if body else {})
        raise HubError(404, f"Not found: {method} /api/{rtype}s/{repo_id}/{'/'.join(segs)}")

    def _info(self, repo, revision: str, blobs: bool):
        oid = self._rev(repo, revision)
        commit = repo["commits"][oid]
        siblings = []
        for path, entry in sorted(commit["files"].items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=entry["size"], blobId=_blob_oid(entry))
                if entry["lfs"]:
                    sibling["lfs"] = {"sha256": entry["oid"], "size": entry["size"],
                                      "pointerSize": len(_pointer(entry["oid"], entry["size"]))}
            siblings.append(sibling)
        readme = commit["files"].get("README.md")
        try:
            card = _front_matter(self._read(readme).decode("utf-8", "replace")) if readme else None
        except ValueError:
            card = None
        data = {"_id": hashlib.sha1(repo["id"].encode()).hexdigest()[:24], "id": repo["id"],
                "author": repo["id"].split("/")[0], "sha": oid, "lastModified": commit["date"],
                "createdAt": repo["createdAt"], "private": repo["private"], "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
                "usedStorage": sum(e["size"] for e in commit["files"].values())}
        if card is not None:
            data["cardData"] = card
        return self._json(data)

    def _refs_json(self, repo) -> dict:
        def refs(table, kind):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": o} for n, o in sorted(repo[table].items())]
        return {"branches": refs("branches", "heads"), "converts": [], "tags": refs("tags", "tags"),
                "pullRequests": []}

    def _entry_json(self, repo, files: dict, head: str, path: str, expand: bool) -> dict:
        entry = files.get(path)
        if entry is None:
            data = {"type": "directory", "oid": self._tree_oid(files, path), "size": 0, "path": path}
        else:
            data = {"type": "file", "oid": _blob_oid(entry), "size": entry["size"], "path": path}
            if entry["lfs"]:
                data["lfs"] = {"oid": entry["oid"], "size": entry["size"],
                               "pointerSize": len(_pointer(entry["oid"], entry["size"]))}
        if expand:  # the last commit of the history that changed this path
            def view(snapshot):
                return {k: v for k, v in snapshot.items() if k == path or k.startswith(path + "/")}
            oid = head
            while (parent := repo["commits"][oid]["parent"]) and \
                    view(repo["commits"][parent]["files"]) == view(repo["commits"][oid]["files"]):
                oid = parent
            commit = repo["commits"][oid]
            data["lastCommit"] = {"id": oid, "title": commit["title"], "date": commit["date"]}
        return data

    def _paginate(self, url_path: str, query: dict, items: list, page_size: int, to_json):
        cursor = int(query.get("cursor", ["0"])[0] or 0)
        headers = {}
        if cursor + page_size < len(items):
            params = {k: v[0] for k, v in query.items() if k != "cursor"}
            params["cursor"] = str(cursor + page_size)
            headers["Link"] = f'<{self.url}{url_path}?{urlencode(params)}>; rel="next"'
        return self._json([to_json(item) for item in items[cursor:cursor + page_size]], headers=headers)

    def _tree(self, repo, rest: list[str], query: dict):
        revision, path = _split_rev(rest)
        head = self._rev(repo, revision)
        files = repo["commits"][head]["files"]
        base = path + "/" if path else ""
        if path in files or (path and not any(p.startswith(base) for p in files)):
            raise HubError(404, f"Entry not found: {path} is not a folder at {revision}", "EntryNotFound")
        found = set()
        for p in files:
            if p.startswith(base):
                parts = p[len(base):].split("/")
                if _flag(query, "recursive"):
                    found.update(base + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
                else:
                    found.add(base + parts[0])
        expand = _flag(query, "expand")
        page_size = self.page_size or (50 if expand else 1000)
        url_path = f"/api/{repo['type']}s/{repo['id']}/tree/{quote(revision, safe='')}" + (
            f"/{quote(path, safe='')}" if path else "")
        return self._paginate(url_path, query, sorted(found), page_size,
                              lambda p: self._entry_json(repo, files, head, p, expand))

    def _paths_info(self, repo, rest, headers, body):
        head = self._rev(repo, _split_rev(rest)[0] if rest else "main")
        if "json" in headers.get("Content-Type", ""):
            payload = json.loads(body or b"{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), _flag(form, "expand")
        files = repo["commits"][head]["files"]
        out = []
        for path in dict.fromkeys(p.strip("/") for p in paths):
            if path in files or (path and any(p.startswith(path + "/") for p in files)):
                out.append(self._entry_json(repo, files, head, path, expand))
        return self._json(out)

    def _commits(self, repo, rest, query):
        revision = _split_rev(rest)[0] if rest else "main"
        oids = self._history(repo, self._rev(repo, revision))

        def to_json(oid):
            c = repo["commits"][oid]
            return {"id": oid, "title": c["title"], "message": c["message"], "date": c["date"],
                    "authors": [{"user": c["author"], "avatar": None}]}
        url_path = f"/api/{repo['type']}s/{repo['id']}/commits/{quote(revision, safe='')}"
        return self._paginate(url_path, query, oids, self.page_size or 50, to_json)

    def _preupload(self, repo, rest, payload: dict):
        head = self._rev(repo, _split_rev(rest)[0] if rest else "main")
        files = repo["commits"][head]["files"]
        rules = _lfs_rules(self._read(files[".gitattributes"]) if ".gitattributes" in files else None)
        out = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            lfs = size > 0 and (size > self.lfs_threshold or b"\0" in sample or _matches_lfs(path, rules))
            info = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in files:  # lets the client skip unchanged files: sha256 for LFS files, git sha1 otherwise
                info["oid"] = files[path]["oid"]
            out.append(info)
        return self._json({"files": out, "commitOid": head})

    def _commit(self, repo, who, rest, body: bytes):
        revision = _split_rev(rest)[0] if rest else "main"
        if revision.startswith("refs/heads/"):
            revision = revision[len("refs/heads/"):]
        if revision not in repo["branches"]:
            raise HubError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
        try:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "The commit payload must be NDJSON") from None
        if not all(isinstance(line, dict) and isinstance(line.get("value"), dict) for line in lines) or \
                not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            raise HubError(400, "A commit is NDJSON lines of {key, value}, a header with a summary first")
        header = lines[0]["value"]
        head = repo["branches"][revision]
        parent = header.get("parentCommit")
        if parent and not (len(parent) >= 5 and head.startswith(parent.lower())):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo["commits"][head]["files"])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = (value.get("path") or "").strip()
            if not path or path.startswith("/") or ".." in path.split("/") or path.split("/")[0] == ".git":
                raise HubError(400, f"Invalid path in commit: {path!r}")
            if key == "file":
                data = base64.b64decode(value.get("content", "")) if value.get("encoding") == "base64" \
                    else str(value.get("content", "")).encode()
                files[path] = self._store(data, lfs=False)
            elif key == "lfsFile":
                oid = value.get("oid", "")
                stored = self.root / "lfs" / oid
                if value.get("algo", "sha256") != "sha256" or oid not in repo["lfs"] or not stored.exists():
                    raise HubError(400, f"LFS object {oid} of {path} was never uploaded to this repo")
                files[path] = {"oid": oid, "size": stored.stat().st_size, "lfs": True}
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"Entry not found: cannot delete {path}", "EntryNotFound")
            elif key == "deletedFolder":
                doomed = [p for p in files if p.startswith(path.rstrip("/") + "/")]
                if not doomed:
                    raise HubError(404, f"Entry not found: cannot delete folder {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        oid = self._add_commit(repo, head, files, header["summary"], header.get("description") or "", who[0])
        repo["branches"][revision] = oid
        self._save(repo)
        return self._json({"success": True, "commitOid": oid, "commitMessage": header["summary"],
                           "commitUrl": f"{self.url}/{URL_PREFIX[repo['type']]}{repo['id']}/commit/{oid}",
                           "hookOutput": "", "pullRequestUrl": None})

    def _ref(self, repo, method: str, kind: str, name: str, payload: dict):
        """POST tag/{revision} {"tag"}, POST branch/{name} {"startingPoint"}, DELETE tag/{name}, branch/{name}."""
        table = "tags" if kind == "tag" else "branches"
        if method == "DELETE":
            if name not in repo[table] or (kind == "branch" and name == "main"):
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            del repo[table][name]
            if kind == "tag":
                repo["tagMessages"].pop(name, None)
        else:
            if kind == "tag":
                name, target = payload.get("tag") or "", self._rev(repo, name)
            else:
                target = self._rev(repo, payload.get("startingPoint") or "main")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", name) or ".." in name:
                raise HubError(400, f"Invalid {kind} name: {name!r}")
            if name in repo[table]:
                raise HubError(409, f"{kind.capitalize()} {name} already exists")
            repo[table][name] = target
            if kind == "tag" and payload.get("message"):
                repo["tagMessages"][name] = payload["message"]
        self._save(repo)
        return self._json({})

    # ----- git-lfs -----
    def _lfs_batch(self, repo, payload: dict):
        if payload.get("operation") != "upload":
            raise HubError(400, "Only the LFS upload operation is served by the hub stand-in")
        prefix = f"{self.url}/{URL_PREFIX[repo['type']]}{repo['id']}.git/info/lfs/objects"
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", -1))
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or size < 0:
                objects.append({"oid": oid, "size": max(size, 0),
                                "error": {"code": 422, "message": "Invalid oid or size"}})
            elif oid in repo["lfs"] and (self.root / "lfs" / oid).exists():
                objects.append({"oid": oid, "size": size})  # already there: no actions, the client skips it
            else:
                nonce = secrets.token_urlsafe(16)
                self._uploads[nonce] = ((repo["type"], repo["id"]), oid, size)
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                    "upload": {"href": f"{self.url}/lfs-upload/{nonce}", "expires_in": 3600},
                    "verify": {"href": f"{prefix}/verify", "expires_in": 3600}}})
        return self._json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                          headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, nonce: str, body: bytes):
        if nonce not in self._uploads:
            raise HubError(403, "Unknown or expired upload url")
        key, oid, size = self._uploads[nonce]
        if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "Uploaded content does not match the announced oid and size")
        self._store(body, lfs=True)
        repo = self._repos[key]
        if oid not in repo["lfs"]:
            repo["lfs"].append(oid)
            self._save(repo)
        return 200, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, b""

    def _lfs_verify(self, repo, payload: dict):
        oid, size = payload.get("oid", ""), payload.get("size")
        stored = self.root / "lfs" / oid
        if oid not in repo["lfs"] or not stored.exists() or stored.stat().st_size != size:
            raise HubError(404, f"LFS object {oid} not found")
        return self._json({"success": True}, headers={"Content-Type": "application/vnd.git-lfs+json"})

    # ----- downloads -----
    def _resolve(self, repo, rest: list[str], headers):
        revision, path = _split_rev(rest)
        oid = self._rev(repo, revision)
        entry = repo["commits"][oid]["files"].get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": oid})
        data = self._read(entry)
        out = {"X-Repo-Commit": oid, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
               "ETag": f'"{entry["oid"]}"'}  # git sha1, or sha256 for LFS files
        if entry["lfs"]:
            out.update({"X-Linked-Etag": f'"{entry["oid"]}"', "X-Linked-Size": str(entry["size"])})
        wanted = headers.get("Range")
        if not wanted:
            return 200, out, data
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", wanted)
        if m is None or m.group(1) == m.group(2) == "":
            raise HubError(416, "Invalid range", headers={"Content-Range": f"bytes */{len(data)}"})
        if m.group(1) == "":
            start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
        else:
            start = int(m.group(1))
            end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
        if start >= len(data) or start > end:
            raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
        out["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, out, data[start:end + 1]
