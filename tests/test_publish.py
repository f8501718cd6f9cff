"""`push` and `build --push-to-hub` through the real huggingface_hub and datasets clients, against the Hub
stand-in on loopback: one commit and one tag per release, loads by tag, card merging, dry runs, interrupted
pushes and resume, stale parents, bad tokens, and the token never leaving the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from answer_server import answer_server
from codelutra_data.builders.build import BuildConfig, run_build
from hub_standin import HubStandin

pytestmark = pytest.mark.slow

WRITE = "hf_writeTOKENabcdefghijklmnopqrstuvw"
READ = "hf_readTOKENabcdefghijklmnopqrstuvwx"
REPO = "my-org/my-sql"


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    """Two real small releases of one name: 0.1.0 on 2 tasks, 0.2.0 on 3 (real builds in the real sandbox, the
    answers from a scripted server, so both have pairs on any machine)."""
    root = tmp_path_factory.mktemp("releases")
    out = {}
    with answer_server() as url:
        for version, limit in (("0.1.0", 2), ("0.2.0", 3)):
            cfg = BuildConfig(limit=limit, samples=3, backend="openai", base_url=url, model="served-model",
                              reference_fallback=True, name="my-sql", version=version,
                              runs_dir=str(root / "runs"), releases_dir=str(root / "releases"))
            result = run_build(cfg)
            assert result.stats["pairs"] >= limit  # pinned by the server
            out[version] = result.release_dir
    return out


@pytest.fixture
def hub(tmp_path):
    with HubStandin(tmp_path / "hub", tokens={WRITE: ("alice", "write"), READ: ("alice", "read")},
                    orgs={"alice": ["my-org"]}) as server:
        yield server


def _env(hub, tmp_path, token: str | None = WRITE) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"))
    if token:
        env["HF_TOKEN"] = token
    return env


def cli(hub, tmp_path, *args, token: str | None = WRITE, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], capture_output=True, text=True,
                            env=_env(hub, tmp_path, token), cwd=cwd or tmp_path, timeout=900)
    for secret in (WRITE, READ):
        assert secret not in result.stdout + result.stderr
    return result


def error_line(result: subprocess.CompletedProcess) -> str:
    """A failed command exits 2 with exactly one error line, its last (progress lines may come before it)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr
    return errors[0]


def client(hub, tmp_path, code: str, token: str | None = WRITE) -> str:
    """Run a client snippet in a fresh process (datasets reads HF_ENDPOINT at import); its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env=_env(hub, tmp_path, token), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def load(hub, tmp_path, config: str, revision: str) -> list[dict]:
    out = client(hub, tmp_path, f"""
        import json, datasets
        ds = datasets.load_dataset({REPO!r}, {config!r}, revision={revision!r}, split="train")
        print(json.dumps([{{"task_id": r["task_id"], "build_id": r.get("build_id")}} for r in ds]))
    """)
    return json.loads(out.strip().splitlines()[-1])


def local_rows(release: Path, config: str) -> list[dict]:
    rows = pq.read_table(next((release / config).glob("train-*.parquet"))).to_pylist()
    return [{"task_id": r["task_id"], "build_id": r.get("build_id")} for r in rows]


def card(hub, revision: str = "main") -> tuple[dict, str]:
    text = hub.files(REPO, revision)["README.md"].decode()
    header, _, body = text[3:].partition("\n---")
    return yaml.safe_load(header), body


def test_two_versions_round_trip_one_commit_and_one_tag_each(hub, tmp_path, releases):
    first = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO, "--json")
    assert first.returncode == 0, first.stderr
    pushed = json.loads(first.stdout)
    assert pushed["created_repo"] and pushed["tag"] == "v0.1.0"
    commits = hub.commits(REPO)
    assert len(commits) == 2 and commits[0]["title"].startswith("Release my-sql 0.1.0 (build ")
    assert hub.refs(REPO)["tags"] == {"v0.1.0": pushed["commit"]}
    files = hub.files(REPO, "v0.1.0")
    assert {"README.md", "build_config.yaml", ".gitattributes"} <= set(files)
    assert files["build_config.yaml"] == (releases["0.1.0"] / "build_config.yaml").read_bytes()
    meta, body = card(hub, "v0.1.0")
    paths = [f["path"] for c in meta["configs"] for f in c["data_files"]]
    assert paths and all(p.startswith("data/") and p in files for p in paths)
    assert "## Changelog" in body and "first release in this repository" in body

    second = cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO, "--json")
    assert second.returncode == 0, second.stderr
    assert len(hub.commits(REPO)) == 3  # one commit per release
    assert set(hub.refs(REPO)["tags"]) == {"v0.1.0", "v0.2.0"}
    head_files = hub.files(REPO, "main")
    assert not any(p in head_files for p in paths)  # 0.1.0's data files are gone from main, kept at its tag
    _, body = card(hub)
    assert body.index("### v0.2.0") < body.index("### v0.1.0")
    assert "config vs v0.1.0: `limit` 2 -> 3" in body and "tasks 3 (v0.1.0: 2)" in body

    for version in ("0.1.0", "0.2.0"):
        for config in ("pairs", "samples"):
            assert load(hub, tmp_path, config, f"v{version}") == local_rows(releases[version], config)


def test_hand_added_card_fields_survive_a_push(hub, tmp_path, releases):
    assert cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO).returncode == 0
    client(hub, tmp_path, f"""
        from huggingface_hub import HfApi, CommitOperationAdd
        api = HfApi()
        text = open(api.hf_hub_download({REPO!r}, "README.md", repo_type="dataset")).read()
        text = text.replace("tags:\\n", "annotations_creators:\\n- machine-generated\\ntags:\\n- my-own-tag\\n", 1)
        text += "\\n## Notes from the maintainers\\n\\nHand-written, keep me.\\n"
        api.create_commit({REPO!r}, [CommitOperationAdd("README.md", text.encode())], commit_message="edit card",
                          repo_type="dataset")
    """)
    assert cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO).returncode == 0
    meta, body = card(hub)
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["tags"][0] == "my-own-tag" and "codelutra" in meta["tags"]
    assert all(f["path"].endswith(".parquet") and f["path"] in hub.files(REPO, "main")
               for c in meta["configs"] for f in c["data_files"])
    assert "Hand-written, keep me." in body and body.count("## Changelog") == 1
    assert body.count("### v0.") == 2


def test_private_repos_are_created_private(hub, tmp_path, releases):
    secret = "my-org/secret"
    assert cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", secret, "--private").returncode == 0
    assert client(hub, tmp_path, f"""
        from huggingface_hub import HfApi
        print(HfApi().repo_info({secret!r}, repo_type="dataset").private)
    """).strip() == "True"
    anonymous = subprocess.run([sys.executable, "-c", f"import datasets; datasets.load_dataset({secret!r}, 'pairs')"],
                               capture_output=True, text=True, env=_env(hub, tmp_path, token=None), timeout=600)
    assert anonymous.returncode != 0


def test_dry_run_sends_nothing(hub, tmp_path, releases):
    result = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "add data/pairs/train-" in result.stdout and "tag v0.1.0" in result.stdout
    assert hub.requests == []


def test_an_interrupted_commit_leaves_no_tag_and_resume_completes_it(hub, tmp_path, releases):
    hub.drop_next("POST", r"/commit/", when="before")  # the connection dies before the Hub applies the commit
    failed = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO)
    assert "--resume" in error_line(failed)
    assert hub.refs(REPO)["tags"] == {} and len(hub.commits(REPO)) == 1  # only the repo's initial commit

    hub.drop_next("POST", r"/commit/", when="after")  # applied, but the client never hears back
    failed = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO)
    assert "--resume" in error_line(failed)
    assert hub.refs(REPO)["tags"] == {} and len(hub.commits(REPO)) == 2
    again = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO)
    assert "rerun with --resume" in error_line(again)  # no second, duplicate commit
    resumed = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] and len(hub.commits(REPO)) == 2
    assert hub.refs(REPO)["tags"] == {"v0.1.0": hub.commits(REPO)[0]["oid"]}
    assert load(hub, tmp_path, "pairs", "v0.1.0") == local_rows(releases["0.1.0"], "pairs")


def test_a_concurrent_push_makes_ours_fail_with_one_line(hub, tmp_path, releases):
    assert cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO).returncode == 0
    hub.commit_before_next("POST", r"/commit/", REPO, {"other.txt": b"someone else's push"})
    stale = cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO)
    assert "changed while pushing" in error_line(stale) and "v0.2.0" not in hub.refs(REPO)["tags"]
    assert cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO).returncode == 0


def test_tokens_and_permissions_fail_with_one_line_and_are_never_shown(hub, tmp_path, releases):
    assert cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO).returncode == 0
    exists = cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO)
    assert "tag v0.1.0 already exists" in error_line(exists)
    for token, expected in ((None, "no Hugging Face token"), ("hf_wrongTOKEN0000000000000000000000", "refused (401)"),
                            (READ, "read-only")):
        result = cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO, token=token)
        assert expected in error_line(result), result.stderr
        assert token is None or token not in result.stderr
    other = cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", "someone-else/data")
    assert "(403)" in error_line(other)
    assert "v0.2.0" not in hub.refs(REPO)["tags"]
    sent = b"".join(hub.bodies) + b"".join(b for f in (hub.files(REPO, "main"),) for b in f.values())
    assert WRITE.encode() not in sent and READ.encode() not in sent


def test_build_push_to_hub_takes_the_next_version_after_the_hubs_tags(hub, tmp_path, releases):
    assert cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO).returncode == 0
    work = tmp_path / "elsewhere"  # no local releases here: the Hub's v0.2.0 is the newest
    work.mkdir()
    built = cli(hub, tmp_path, "build", "--limit", "2", "--samples", "2", "--max-new-tokens", "16", "--name", "my-sql",
                "--reference-fallback", "--threads", "1", "--push-to-hub", REPO, "--json", cwd=work)
    assert built.returncode == 0, built.stderr[-3000:]
    out = json.loads(built.stdout)
    assert out["release"].endswith("my-sql/0.2.1") and out["pushed"]["tag"] == "v0.2.1"
    assert set(hub.refs(REPO)["tags"]) == {"v0.2.0", "v0.2.1"}
    bad = cli(hub, tmp_path, "build", "--limit", "1", "--push-to-hub", REPO, token=READ, cwd=work)
    assert "read-only" in error_line(bad) and not (work / "runs" / "my-sql" / "0.2.2").exists()


OLAH = Path(__file__).resolve().parent.parent / ".venv-olah" / "bin" / "olah-cli"


def test_a_pushed_release_loads_through_olah_a_third_party_read_server(hub, tmp_path, releases):
    """Independent of the stand-in's read side: the repo as a git mirror, served by olah in offline mode."""
    import socket
    import time
    import urllib.request

    assert OLAH.exists(), "olah runs from its own environment: `make test` builds .venv-olah"
    assert cli(hub, tmp_path, "push", str(releases["0.1.0"]), "--repo", REPO).returncode == 0
    assert cli(hub, tmp_path, "push", str(releases["0.2.0"]), "--repo", REPO).returncode == 0
    hub.export_git(REPO, tmp_path / "mirrors" / "datasets" / REPO)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "olah.toml").write_text(textwrap.dedent(f"""
        [basic]
        host = "127.0.0.1"
        port = {port}
        repos-path = "{tmp_path / 'olah-repos'}"
        mirrors-path = ["{tmp_path / 'mirrors'}"]
        mirror-netloc = "127.0.0.1:{port}"
        mirror-lfs-netloc = "127.0.0.1:{port}"
        [accessibility]
        offline = true
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    log = open(tmp_path / "olah.log", "w")
    proc = subprocess.Popen([str(OLAH), "-c", str(tmp_path / "olah.toml"), "--log-path", str(tmp_path / "olah-logs")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/datasets/{REPO}/refs", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "olah.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "olah did not start"
            time.sleep(0.3)
        olah_env = _env(hub, tmp_path, token=None)
        olah_env["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
        for version in ("0.1.0", "0.2.0"):
            for config in ("pairs", "samples"):
                code = textwrap.dedent(f"""
                    import json, datasets
                    ds = datasets.load_dataset({REPO!r}, {config!r}, revision="v{version}", split="train")
                    print(json.dumps([{{"task_id": r["task_id"], "build_id": r.get("build_id")}} for r in ds]))
                """)
                result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=olah_env,
                                        timeout=600)
                assert result.returncode == 0, result.stderr[-3000:] + (tmp_path / "olah.log").read_text()[-2000:]
                assert json.loads(result.stdout.strip().splitlines()[-1]) == local_rows(releases[version], config)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
