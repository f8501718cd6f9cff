"""The Hub stand-in (tests/hub_standin.py) against the real clients: huggingface_hub and datasets, run in subprocesses
pointed at it by HF_ENDPOINT (which both libraries read at import time)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hub_standin import HubStandin

WRITE = "hf_standin_write_0123456789abcdef"
READ = "hf_standin_read_0123456789abcdef"
BOB = "hf_standin_bob_0123456789abcdef"
BAD = "hf_standin_unknown_0123456789abcdef"
TOKENS = {WRITE: ("alice", "write"), READ: ("alice", "read"), BOB: ("bob", "write")}
REPO = "alice/codelutra-pairs"

# Shared by every client script: helpers, and `emit(...)`, whose JSON lines `run_client` returns.
PRELUDE = '''
import io, json, sys
import httpx2
import pyarrow as pa, pyarrow.parquet as pq
from huggingface_hub import HfApi, CommitOperationAdd, CommitOperationDelete
REPO = "alice/codelutra-pairs"
api = HfApi()
README = """---
configs:
- config_name: pairs
  data_files:
  - split: train
    path: data/pairs/train-*.parquet
- config_name: samples
  data_files:
  - split: train
    path: data/samples/train-*.parquet
---
# CodeLutra pairs
"""
def parquet(rows):
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()
def emit(**kw):
    print("@@" + json.dumps(kw, default=str), flush=True)
def failure(fn, *args, **kwargs):
    """None if the call succeeds, else the exception's type name and HTTP status."""
    try:
        fn(*args, **kwargs)
    except Exception as e:
        response = getattr(e, "response", None)
        return {"type": type(e).__name__, "status": getattr(response, "status_code", None),
                "transport": isinstance(e, httpx2.TransportError)}
    return None
'''

PAIRS_V1 = [{"prompt": "p1", "chosen": "a", "rejected": "b"}, {"prompt": "p2", "chosen": "c", "rejected": "d"}]
SAMPLES_V1 = [{"task": "t1", "ok": True}]
PAIRS_V2 = [{"prompt": "p3", "chosen": "e", "rejected": "f"}]
SAMPLES_V2 = [{"task": "t2", "ok": False}, {"task": "t3", "ok": True}]

# Two releases: v0.1.0, then a commit that replaces the data files, tagged v0.2.0.
PUSH_TWO_RELEASES = f'''
api.create_repo(REPO, repo_type="dataset")
head = api.repo_info(REPO, repo_type="dataset").sha
v1 = api.create_commit(REPO, repo_type="dataset", commit_message="Release v0.1.0", commit_description="first",
    parent_commit=head, operations=[
        CommitOperationAdd("README.md", README.encode()),
        CommitOperationAdd("data/pairs/train-00000-of-00001.parquet", parquet({PAIRS_V1!r})),
        CommitOperationAdd("data/samples/train-00000-of-00001.parquet", parquet({SAMPLES_V1!r})),
        CommitOperationAdd("release.yaml", b"version: 0.1.0\\n"),
    ])
api.create_tag(REPO, tag="v0.1.0", revision=v1.oid, repo_type="dataset")
v2 = api.create_commit(REPO, repo_type="dataset", commit_message="Release v0.2.0", parent_commit=v1.oid,
    operations=[
        CommitOperationDelete("data/pairs/train-00000-of-00001.parquet"),
        CommitOperationDelete("data/samples/", is_folder=True),
        CommitOperationAdd("data/pairs/train-00000-of-00002.parquet", parquet({PAIRS_V2!r})),
        CommitOperationAdd("data/samples/train-00000-of-00002.parquet", parquet({SAMPLES_V2!r})),
        CommitOperationAdd("release.yaml", b"version: 0.2.0\\n"),
    ])
api.create_tag(REPO, tag="v0.2.0", revision=v2.oid, repo_type="dataset", tag_message="second release")
emit(v1=v1.oid, v2=v2.oid, v1_url=v1.commit_url)
'''


@pytest.fixture
def hub(tmp_path):
    with HubStandin(tmp_path / "hub", tokens=TOKENS, orgs={"alice": ["my-org"]}) as server:
        yield server
        assert server.errors == []


def run_client(hub: HubStandin, tmp_path: Path, code: str, token: str | None = WRITE, check: bool = True):
    """Run PRELUDE + `code` in a fresh interpreter pointed at the stand-in; returns (emitted dicts merged, process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_CACHE=str(tmp_path / "hf_hub_cache"),
               HF_DATASETS_CACHE=str(tmp_path / "hf_datasets_cache"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_UPDATE_CHECK="1")
    if token is not None:
        env["HF_TOKEN"] = token
    script = tmp_path / "client.py"
    script.write_text(PRELUDE + textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-4000:]
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("@@"):
            out.update(json.loads(line[2:]))
    return out, done


def assert_no_token_leak(hub: HubStandin) -> None:
    for token in TOKENS:
        for response in hub.responses:
            if response is not None:
                status, headers, payload = response
                assert token.encode() not in payload and token not in json.dumps(headers)


def test_whoami_create_repo_and_private_repos(hub, tmp_path):
    out, _ = run_client(hub, tmp_path, '''
        me = api.whoami()
        emit(name=me["name"], orgs=[o["name"] for o in me["orgs"]], role=me["auth"]["accessToken"]["role"])
        emit(url=str(api.create_repo(REPO, repo_type="dataset")))
        emit(again=failure(api.create_repo, REPO, repo_type="dataset"))
        emit(exist_ok=str(api.create_repo(REPO, repo_type="dataset", exist_ok=True)))
        emit(org=api.create_repo("my-org/shared", repo_type="dataset").repo_id)
        emit(foreign=failure(api.create_repo, "bob/mine", repo_type="dataset"))
        api.create_repo("alice/secret", repo_type="dataset", private=True)
        emit(info_private=api.repo_info("alice/secret", repo_type="dataset").private)
        emit(anonymous=failure(api.repo_info, "alice/secret", repo_type="dataset", token=False),
             stranger=failure(api.repo_info, "alice/secret", repo_type="dataset", token="%s"),
             missing=failure(api.repo_info, "alice/nothing-here", repo_type="dataset"),
             exists=api.repo_exists(REPO, repo_type="dataset"),
             exists_private_anonymous=api.repo_exists("alice/secret", repo_type="dataset", token=False))
    ''' % BOB)
    assert out["name"] == "alice" and out["orgs"] == ["my-org"] and out["role"] == "write"
    assert out["url"] == out["exist_ok"] == f"{hub.url}/datasets/{REPO}"
    assert out["again"]["status"] == 409
    assert out["org"] == "my-org/shared"
    assert out["foreign"]["status"] == 403
    assert out["info_private"] is True
    assert out["anonymous"] == {"type": "RepositoryNotFoundError", "status": 401, "transport": False}
    assert out["stranger"] == {"type": "RepositoryNotFoundError", "status": 404, "transport": False}
    assert out["missing"]["type"] == "RepositoryNotFoundError"
    assert out["exists"] is True and out["exists_private_anonymous"] is False
    # the initial commit holds the Hub's .gitattributes, which sends parquet files to LFS
    assert [c["title"] for c in hub.commits(REPO)] == ["initial commit"]
    assert b"*.parquet filter=lfs" in hub.files(REPO)[".gitattributes"]
    assert_no_token_leak(hub)


def test_two_releases_read_back_with_huggingface_hub_and_datasets(hub, tmp_path):
    pushed, _ = run_client(hub, tmp_path, PUSH_TWO_RELEASES)
    v1, v2 = pushed["v1"], pushed["v2"]
    assert pushed["v1_url"] == f"{hub.url}/datasets/{REPO}/commit/{v1}"
    assert hub.refs(REPO) == {"branches": {"main": v2}, "tags": {"v0.1.0": v1, "v0.2.0": v2}}
    commits = hub.commits(REPO)
    assert [(c["title"], c["message"]) for c in commits] == [
        ("Release v0.2.0", ""), ("Release v0.1.0", "first"), ("initial commit", "")]
    assert commits[0]["parent"] == v1
    assert sorted(hub.files(REPO, "v0.1.0")) == [".gitattributes", "README.md",
                                                  "data/pairs/train-00000-of-00001.parquet",
                                                  "data/samples/train-00000-of-00001.parquet", "release.yaml"]
    assert sorted(hub.files(REPO, "v0.2.0")) == [".gitattributes", "README.md",
                                                  "data/pairs/train-00000-of-00002.parquet",
                                                  "data/samples/train-00000-of-00002.parquet", "release.yaml"]
    # README.md went through validate-yaml; parquet through LFS (preupload said so), yaml/README as regular files
    paths = [(r.method, r.path) for r in hub.requests]
    assert ("POST", "/api/validate-yaml") in paths
    assert sum(1 for m, p in paths if m == "PUT" and p.startswith("/lfs-upload/")) == 4
    lfs_commit = next(b for r, b in zip(hub.requests, hub.bodies) if r.path.endswith("/commit/main"))
    kinds = {json.loads(line)["value"].get("path"): json.loads(line)["key"] for line in lfs_commit.splitlines()}
    assert kinds["data/pairs/train-00000-of-00001.parquet"] == "lfsFile"
    assert kinds["release.yaml"] == kinds["README.md"] == "file"

    out, _ = run_client(hub, tmp_path, f'''
        from huggingface_hub import hf_hub_download, HfFileSystem
        import datasets
        refs = api.list_repo_refs(REPO, repo_type="dataset")
        emit(branches={{r.name: r.target_commit for r in refs.branches}},
             tags={{r.name: r.target_commit for r in refs.tags}}, converts=refs.converts)
        emit(commits=[(c.commit_id, c.title, c.authors) for c in api.list_repo_commits(REPO, repo_type="dataset")])
        info = api.repo_info(REPO, repo_type="dataset", revision="v0.1.0", files_metadata=True)
        emit(sha=info.sha, configs=[c["config_name"] for c in info.card_data["configs"]],
             siblings={{s.rfilename: bool(s.lfs) for s in info.siblings}})
        tree = api.list_repo_tree(REPO, repo_type="dataset", revision="v0.1.0", recursive=True, expand=True)
        emit(tree={{t.path: (type(t).__name__, t.last_commit.title) for t in tree}})
        emit(top=sorted(t.path for t in api.list_repo_tree(REPO, repo_type="dataset", revision="v0.2.0")))
        info = api.get_paths_info(REPO, ["release.yaml", "data", "no/such/file"], repo_type="dataset",
                                  revision="v0.1.0")
        emit(paths_info=[(type(p).__name__, p.path) for p in info])
        emit(old=open(hf_hub_download(REPO, "release.yaml", repo_type="dataset", revision="v0.1.0")).read(),
             new=open(hf_hub_download(REPO, "release.yaml", repo_type="dataset", revision="v0.2.0")).read(),
             by_oid=open(hf_hub_download(REPO, "release.yaml", repo_type="dataset", revision="{v1}")).read())
        emit(exists=[api.file_exists(REPO, f, repo_type="dataset", revision=r) for f, r in [
            ("release.yaml", "v0.1.0"), ("data/pairs/train-00000-of-00001.parquet", "v0.2.0"), ("nope", None)]],
             bad_revision=failure(hf_hub_download, REPO, "release.yaml", repo_type="dataset", revision="v9"),
             missing_file=failure(hf_hub_download, REPO, "nope.txt", repo_type="dataset"))
        fs = HfFileSystem()
        emit(ranged=fs.cat_file(f"datasets/{{REPO}}@v0.2.0/release.yaml", start=9, end=14).decode())
        rows = {{}}
        for tag in ("v0.1.0", "v0.2.0"):
            for config in ("pairs", "samples"):
                rows[f"{{tag}}/{{config}}"] = datasets.load_dataset(REPO, config, revision=tag)["train"].to_list()
        emit(rows=rows)
    ''')
    assert out["branches"] == {"main": v2} and out["tags"] == {"v0.1.0": v1, "v0.2.0": v2}
    assert [c[1] for c in out["commits"]] == ["Release v0.2.0", "Release v0.1.0", "initial commit"]
    assert out["commits"][0][0] == v2 and out["commits"][0][2] == ["alice"]
    assert out["sha"] == v1 and out["configs"] == ["pairs", "samples"]
    assert out["siblings"]["data/pairs/train-00000-of-00001.parquet"] is True
    assert out["siblings"]["README.md"] is False
    assert out["tree"]["data"] == ["RepoFolder", "Release v0.1.0"]
    assert out["tree"][".gitattributes"] == ["RepoFile", "initial commit"]
    assert out["top"] == [".gitattributes", "README.md", "data", "release.yaml"]
    assert out["paths_info"] == [["RepoFile", "release.yaml"], ["RepoFolder", "data"]]
    assert (out["old"], out["new"], out["by_oid"]) == ("version: 0.1.0\n", "version: 0.2.0\n", "version: 0.1.0\n")
    assert out["exists"] == [True, False, False]
    assert out["bad_revision"]["type"] == "RevisionNotFoundError"
    assert out["missing_file"]["type"] == "RemoteEntryNotFoundError"
    assert out["ranged"] == "0.2.0"
    assert out["rows"] == {"v0.1.0/pairs": PAIRS_V1, "v0.1.0/samples": SAMPLES_V1,
                           "v0.2.0/pairs": PAIRS_V2, "v0.2.0/samples": SAMPLES_V2}
    assert all(r.has_auth for r in hub.requests if not r.path.startswith("/lfs-upload/"))
    assert not any(WRITE.encode() in body for body in hub.bodies)
    assert_no_token_leak(hub)


def test_stale_parent_commit_is_412_and_existing_tag_is_409(hub, tmp_path):
    out, _ = run_client(hub, tmp_path, '''
        api.create_repo(REPO, repo_type="dataset")
        initial = api.repo_info(REPO, repo_type="dataset").sha
        first = api.create_commit(REPO, [CommitOperationAdd("a.txt", b"a")], commit_message="a",
                                  repo_type="dataset", parent_commit=initial)
        emit(stale=failure(api.create_commit, REPO, [CommitOperationAdd("b.txt", b"b")], commit_message="b",
                           repo_type="dataset", parent_commit=initial))
        api.create_tag(REPO, tag="v0.1.0", revision=first.oid, repo_type="dataset")
        emit(tag_again=failure(api.create_tag, REPO, tag="v0.1.0", revision=first.oid, repo_type="dataset"),
             tag_exist_ok=failure(api.create_tag, REPO, tag="v0.1.0", repo_type="dataset", exist_ok=True),
             tag_bad_revision=failure(api.create_tag, REPO, tag="v9", revision="0" * 40, repo_type="dataset"),
             delete_missing=failure(api.create_commit, REPO, [CommitOperationDelete("nope.txt")],
                                    commit_message="x", repo_type="dataset"),
             bad_yaml=failure(api.upload_file, path_or_fileobj=b"---\\nconfigs: [\\n---\\n", path_in_repo="README.md",
                              repo_id=REPO, repo_type="dataset"))
        emit(first=first.oid)
    ''')
    assert out["stale"]["status"] == 412
    assert out["tag_again"]["status"] == 409 and out["tag_exist_ok"] is None
    assert out["tag_bad_revision"]["type"] == "RevisionNotFoundError"
    assert out["delete_missing"]["type"] == "RemoteEntryNotFoundError"
    assert out["bad_yaml"]["type"] == "ValueError"  # rejected by /api/validate-yaml before any upload
    assert [c["title"] for c in hub.commits(REPO)] == ["a", "initial commit"]
    assert hub.refs(REPO)["tags"] == {"v0.1.0": out["first"]}


def test_bad_token_is_401_and_read_token_is_403(hub, tmp_path):
    run_client(hub, tmp_path, 'api.create_repo(REPO, repo_type="dataset")')
    commit = 'api.create_commit(REPO, [CommitOperationAdd("x.txt", b"x")], commit_message="x", repo_type="dataset")'
    out, _ = run_client(hub, tmp_path, f'''
        emit(whoami=failure(api.whoami), commit=failure(lambda: {commit}),
             read=failure(api.repo_info, REPO, repo_type="dataset"))
    ''', token=BAD)
    assert out["whoami"]["status"] == out["commit"]["status"] == out["read"]["status"] == 401
    out, _ = run_client(hub, tmp_path, f'''
        emit(role=api.whoami()["auth"]["accessToken"]["role"], sha=api.repo_info(REPO, repo_type="dataset").sha,
             commit=failure(lambda: {commit}),
             readme=failure(api.upload_file, path_or_fileobj=README.encode(), path_in_repo="README.md",
                            repo_id=REPO, repo_type="dataset"),
             tag=failure(api.create_tag, REPO, tag="v1", repo_type="dataset"),
             create=failure(api.create_repo, "alice/other", repo_type="dataset"))
    ''', token=READ)
    assert out["role"] == "read"
    assert out["commit"]["status"] == out["readme"]["status"] == out["tag"]["status"] == 403
    assert out["create"]["status"] == 403
    assert len(hub.commits(REPO)) == 1 and hub.refs(REPO)["tags"] == {}
    assert_no_token_leak(hub)


def test_connection_dropped_before_the_commit_is_applied(hub, tmp_path):
    run_client(hub, tmp_path, 'api.create_repo(REPO, repo_type="dataset")')
    hub.drop_next("PUT", r"^/lfs-upload/", when="before")  # the client retries LFS uploads by itself
    hub.drop_next("POST", r"/commit/", when="before")
    out, _ = run_client(hub, tmp_path, '''
        head = api.repo_info(REPO, repo_type="dataset").sha
        ops = lambda: [CommitOperationAdd("data/pairs/train.parquet", parquet([{"a": 1}])),
                       CommitOperationAdd("notes.txt", b"hello")]
        emit(dropped=failure(api.create_commit, REPO, ops(), commit_message="push", repo_type="dataset",
                             parent_commit=head))
        emit(retried=api.create_commit(REPO, ops(), commit_message="push", repo_type="dataset",
                                       parent_commit=head).oid)
    ''')
    assert out["dropped"]["transport"] is True  # e.g. httpx2.RemoteProtocolError: server disconnected
    # one LFS upload, dropped then retried by the client; the second create_commit found the object already
    # uploaded (the batch answer had no actions) and sent no PUT
    puts = [i for i, r in enumerate(hub.requests) if r.method == "PUT"]
    assert len(puts) == 2 and hub.responses[puts[0]] is None and hub.responses[puts[1]][0] == 200
    assert sum(r.path.endswith("/info/lfs/objects/batch") for r in hub.requests) == 2
    assert [c["title"] for c in hub.commits(REPO)] == ["push", "initial commit"]
    assert hub.refs(REPO)["branches"]["main"] == out["retried"]
    assert hub.files(REPO)["notes.txt"] == b"hello"


def test_connection_dropped_after_the_commit_is_applied(hub, tmp_path):
    run_client(hub, tmp_path, 'api.create_repo(REPO, repo_type="dataset")')
    hub.drop_next("POST", r"/commit/", when="after")
    out, _ = run_client(hub, tmp_path, '''
        head = api.repo_info(REPO, repo_type="dataset").sha
        ops = lambda: [CommitOperationAdd("notes.txt", b"hello")]
        emit(dropped=failure(api.create_commit, REPO, ops(), commit_message="push", repo_type="dataset",
                             parent_commit=head))
        emit(stale=failure(api.create_commit, REPO, [CommitOperationAdd("other.txt", b"x")], commit_message="x",
                           repo_type="dataset", parent_commit=head))
        # the same files again: preupload reports them unchanged, the client makes no commit and returns the head
        emit(retried=api.create_commit(REPO, ops(), commit_message="push", repo_type="dataset").oid,
             head=api.repo_info(REPO, repo_type="dataset").sha)
    ''')
    assert out["dropped"]["transport"] is True
    assert out["stale"]["status"] == 412  # the first attempt landed: its parent is no longer the head
    assert out["retried"] == out["head"]
    assert [c["title"] for c in hub.commits(REPO)] == ["push", "initial commit"]
    assert hub.refs(REPO)["branches"]["main"] == out["head"]


def test_export_git_replays_commits_tags_and_contents(hub, tmp_path):
    pushed, _ = run_client(hub, tmp_path, PUSH_TWO_RELEASES)
    dest = tmp_path / "git"
    shas = hub.export_git(REPO, dest)
    assert set(shas) == {c["oid"] for c in hub.commits(REPO)}

    def git(*args) -> bytes:
        return subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True).stdout

    assert git("log", "--format=%s|%an", "main").decode().splitlines() == [
        "Release v0.2.0|alice", "Release v0.1.0|alice", "initial commit|alice"]
    assert git("log", "-1", "--format=%b", "v0.1.0").decode().strip() == "first"
    assert git("tag").decode().split() == ["v0.1.0", "v0.2.0"]
    assert git("cat-file", "-t", "v0.2.0").strip() == b"tag"  # created with a message: annotated
    assert git("rev-parse", "v0.1.0^{commit}").decode().strip() == shas[pushed["v1"]]
    for tag in ("v0.1.0", "v0.2.0"):
        files = hub.files(REPO, tag)
        assert git("ls-tree", "-r", "--name-only", tag).decode().split() == sorted(files)
        for path, data in files.items():
            assert git("show", f"{tag}:{path}") == data  # LFS files as their content, not pointers
    assert (dest / "release.yaml").read_bytes() == b"version: 0.2.0\n"  # main checked out


def test_pagination_follows_link_headers(tmp_path):
    with HubStandin(tmp_path / "hub", tokens=TOKENS, page_size=2) as hub:
        out, _ = run_client(hub, tmp_path, '''
            api.create_repo(REPO, repo_type="dataset")
            for i in range(3):
                api.create_commit(REPO, [CommitOperationAdd(f"dir/f{i}.txt", b"%d" % i)], commit_message=f"c{i}",
                                  repo_type="dataset")
            emit(tree=sorted(t.path for t in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)),
                 commits=[c.title for c in api.list_repo_commits(REPO, repo_type="dataset")])
        ''')
        assert out["tree"] == [".gitattributes", "dir", "dir/f0.txt", "dir/f1.txt", "dir/f2.txt"]
        assert out["commits"] == ["c2", "c1", "c0", "initial commit"]
        assert any("cursor=" in r.query for r in hub.requests if "/tree/" in r.path)
        assert hub.errors == []


def _http(hub: HubStandin, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_http_protocol_and_error_headers(hub, tmp_path):
    auth = {"Authorization": f"Bearer {WRITE}"}
    # chunked body with Expect: 100-continue, then more requests on the same keep-alive connection
    sock = socket.create_connection(("127.0.0.1", int(hub.url.rsplit(":", 1)[1])), timeout=10)
    payload = json.dumps({"name": "raw", "organization": "alice", "type": "dataset"}).encode()
    sock.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + WRITE.encode()
                 + b"\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 100")
    sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
    reader = sock.makefile("rb")

    def read_response() -> tuple[int, bytes]:
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, reader.read(length)

    status, body = read_response()
    assert status == 200 and json.loads(body)["url"].endswith("/datasets/alice/raw")
    sock.sendall(b"GET /api/datasets/alice/raw/refs HTTP/1.1\r\nHost: x\r\n\r\n")  # same connection
    status, body = read_response()
    assert status == 200 and [b["name"] for b in json.loads(body)["branches"]] == ["main"]
    sock.close()
    assert hub.bodies[0] == payload

    gitattributes = hub.files("alice/raw")[".gitattributes"]
    status, headers, data = _http(hub, "HEAD", "/datasets/alice/raw/resolve/main/.gitattributes")
    assert status == 200 and data == b"" and int(headers["Content-Length"]) == len(gitattributes)
    assert headers["X-Repo-Commit"] == hub.refs("alice/raw")["branches"]["main"]
    assert headers["ETag"].strip('"') == hashlib.sha1(
        b"blob %d\0" % len(gitattributes) + gitattributes).hexdigest()
    status, headers, data = _http(hub, "GET", "/datasets/alice/raw/resolve/main/.gitattributes",
                                  headers={"Range": "bytes=2-5"})
    assert status == 206 and data == gitattributes[2:6]
    assert headers["Content-Range"] == f"bytes 2-5/{len(gitattributes)}"
    status, headers, _ = _http(hub, "GET", "/datasets/alice/raw/resolve/main/.gitattributes",
                               headers={"Range": "bytes=999999-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(gitattributes)}"

    for path, code in [("/datasets/alice/none/resolve/main/a", "RepoNotFound"),
                       ("/datasets/alice/raw/resolve/v9/a", "RevisionNotFound"),
                       ("/datasets/alice/raw/resolve/main/a", "EntryNotFound"),
                       ("/api/datasets/alice/raw/revision/refs%2Fconvert%2Fparquet", "RevisionNotFound"),
                       ("/api/datasets/alice/raw/tree/main/nowhere", "EntryNotFound")]:
        status, headers, body = _http(hub, "GET", path, headers=auth)
        assert (status, headers.get("X-Error-Code")) == (404, code), path
        assert "error" in json.loads(body)
    status, headers, body = _http(hub, "GET", "/api/whoami-v2", headers={"Authorization": f"Bearer {BAD}"})
    assert status == 401 and json.loads(body)["error"] and BAD.encode() not in body
    status, _, _ = _http(hub, "GET", "/datasets/alice/none/resolve/main/a")
    assert status == 401  # anonymous: 401, like the Hub, still RepoNotFound

    # a new stand-in on the same folder sees the same repos
    with HubStandin(tmp_path / "hub", tokens=TOKENS) as again:
        assert again.refs("alice/raw") == hub.refs("alice/raw")
        assert again.files("alice/raw") == hub.files("alice/raw")


def test_concurrent_commits_on_the_same_parent(hub):
    auth = {"Authorization": f"Bearer {WRITE}", "Content-Type": "application/json"}
    body = json.dumps({"name": "race", "type": "dataset"}).encode()
    assert _http(hub, "POST", "/api/repos/create", body, auth)[0] == 200
    parent = hub.refs("alice/race")["branches"]["main"]

    def commit(i: int) -> int:
        lines = [{"key": "header", "value": {"summary": f"c{i}", "parentCommit": parent}},
                 {"key": "file", "value": {"path": f"f{i}.txt", "content": "eA==", "encoding": "base64"}}]
        payload = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return _http(hub, "POST", "/api/datasets/alice/race/commit/main", payload, auth)[0]

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(commit, range(8)))
    assert statuses == [200] + [412] * 7
    assert len(hub.commits("alice/race")) == 2
