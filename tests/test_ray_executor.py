"""The Ray executor on a real two-node cluster: a head and a second node started with `ray start` on loopback
(separate processes, stopped afterwards). Builds and evals on it give the same records as local ones, their
sandbox work lands on both nodes, a killed driver resumes, a lost actor's batches run elsewhere, and SQL
databases reach the nodes through the object store. The second node has no bubblewrap on its PATH, so the
check that names a node unable to sandbox Python is exercised too."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

# One cluster on the machine at a time (pytest-xdist's loadgroup does not group under pytest 9, and two
# clusters started together here never came up): each test takes this lock for its own cluster.
CLUSTER_LOCK = Path("/tmp/codelutra-ray-tests.lock")

BIN = Path(sys.executable).parent
# Ray 2.60 turns on token authentication for `ray start` once a token file exists (~/.ray/auth_token, written by
# any earlier local `ray.init()`), and then refuses clients that do not set RAY_AUTH_MODE=token: these
# loopback clusters, and every client here (the CLI runs inherit it), run without it.
os.environ["RAY_AUTH_MODE"] = "disabled"
BUILD = ["--backend", "transformers", "--threads", "1", "--limit", "4", "--samples", "2", "--batch-size", "2",
         "--json"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ray"), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--object-store-memory=100000000", "--disable-usage-stats", *args],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _alive_nodes(address: str) -> list[str]:
    code = ("import ray, json; ray.init(address=%r, logging_level='ERROR', log_to_driver=False); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))" % address)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else []


def _stop(proc: subprocess.Popen, marker: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    subprocess.run(["pkill", "-9", "-f", marker], check=False)  # anything of this cluster that outlived its group


@pytest.fixture
def cluster(tmp_path_factory):
    from filelock import FileLock

    with FileLock(str(CLUSTER_LOCK)):
        yield from _cluster(tmp_path_factory)


def _cluster(tmp_path_factory):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = f"/tmp/ray-{uuid.uuid4().hex[:8]}"  # short: Ray's socket paths must fit in 107 bytes
    logs = tmp_path_factory.mktemp("ray-logs")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = _start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"], env,
                  logs / "head.log")
    procs = [head]
    try:
        deadline = time.monotonic() + 600  # a hang guard only: a busy machine may take minutes
        while len(_alive_nodes(address)) < 1:
            assert head.poll() is None and time.monotonic() < deadline, (logs / "head.log").read_text()[-2000:]
            time.sleep(1)
        no_bwrap = {**env, "PATH": str(BIN)}  # the second node cannot find bubblewrap
        procs.append(_start([f"--address={address}"], no_bwrap, logs / "node2.log"))
        while len(nodes := _alive_nodes(address)) < 2:
            assert procs[1].poll() is None and time.monotonic() < deadline, (logs / "node2.log").read_text()[-2000:]
            time.sleep(1)
        yield {"address": address, "nodes": nodes}
    finally:
        for proc in reversed(procs):
            _stop(proc, temp)
        shutil.rmtree(temp, ignore_errors=True)


def _cli(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "codelutra-data"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, **kwargs)


def _tables(release: Path) -> dict:
    """The release's rows without what depends on the machine's speed (durations, CPU seconds)."""
    import pyarrow.parquet as pq

    out = {}
    for f in sorted(release.glob("*/*.parquet")):
        table = pq.read_table(f)
        out[f"{f.parent.name}/{f.name}"] = table.drop([c for c in ("duration_s", "cpu_s") if c in table.column_names])
    return out


@pytest.fixture(scope="module")
def local_release(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("local")
    done = _cli(["build", *BUILD, "--name", "same"], work)
    assert done.returncode == 0, done.stderr[-2000:]
    return work / json.loads(done.stdout)["release"]


def _same_release(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    assert sorted(ta) == sorted(tb) and ta, (sorted(ta), sorted(tb))
    for name in ta:
        assert ta[name].equals(tb[name]), name
    import yaml

    ya, yb = (yaml.safe_load((r / "build_config.yaml").read_text()) for r in (a, b))
    assert ya["build_id"] == yb["build_id"] and ya["model"] == yb["model"]
    cluster_keys = {"executor", "ray_address", "replicas", "sandbox_workers", "resume"}
    assert {k: v for k, v in ya["config"].items() if k not in cluster_keys} == \
        {k: v for k, v in yb["config"].items() if k not in cluster_keys}
    for key in ("samples", "pass_rate", "status_histogram", "pairs"):
        assert ya["stats"][key] == yb["stats"][key], key


def _executions(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "executions.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_build_on_two_nodes_equals_the_local_build(cluster, local_release, tmp_path):
    done = _cli(["build", *BUILD, "--name", "same", "--executor", "ray", "--ray-address", cluster["address"]],
                tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout)
    release = tmp_path / stats["release"]
    _same_release(release, local_release)
    assert stats["executor"]["name"] == "ray" and stats["executor"]["nodes"] == 2
    assert stats["executor"]["sandbox_nodes"] == 2 and stats["executor"]["resources"]["CPU"] == 4
    nodes = {e["node"] for e in _executions(tmp_path / "runs" / "same" / "0.1.0")}
    assert nodes == set(cluster["nodes"]), "the sandbox work did not land on both nodes"
    card = (release / "README.md").read_text()
    assert "Executor: ray" in card and "2 node(s)" in card
    rows = _tables(release)["samples/" + next(p.name for p in (release / "samples").glob("*.parquet"))]
    assert "node" not in rows.column_names  # where a program ran is not part of the dataset


@pytest.mark.slow
def test_the_driver_killed_mid_build_resumes_without_losing_or_repeating(cluster, local_release, tmp_path):
    args = ["build", *BUILD, "--name", "same", "--executor", "ray", "--ray-address", cluster["address"]]
    driver = subprocess.Popen([str(BIN / "codelutra-data"), *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    samples = tmp_path / "runs" / "same" / "0.1.0" / "samples.jsonl"
    deadline = time.monotonic() + 600
    while not (samples.is_file() and samples.read_text().strip()):
        assert driver.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert not (tmp_path / "releases" / "same" / "0.1.0").exists()
    kept = len(samples.read_text().splitlines())
    assert 0 < kept < 8
    done = _cli([*args, "--resume"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout)
    assert stats["resumed_samples"] >= kept - 1  # a torn last line is cut on open
    _same_release(tmp_path / stats["release"], local_release)
    for table in ("samples", "executions"):
        keys = [json.loads(line)["sample_id"] for line in (samples.parent / f"{table}.jsonl").read_text().splitlines()
                if line.strip()]
        assert len(keys) == len(set(keys)) == 8, table


@pytest.mark.slow
def test_an_eval_on_the_cluster_grades_like_a_local_one(cluster, tmp_path):
    common = ["eval", "--suite", "spider-dev", "--limit", "3", "--model", "smollm2-135m", "--backend", "transformers",
              "--threads", "1", "--json"]
    local = _cli([*common, "--store", str(tmp_path / "a.duckdb"), "--out", str(tmp_path / "a")], tmp_path)
    remote = _cli([*common, "--store", str(tmp_path / "b.duckdb"), "--out", str(tmp_path / "b"), "--executor", "ray",
                   "--ray-address", cluster["address"], "--replicas", "2"], tmp_path)
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr[-1500:], remote.stderr[-1500:])
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a["config_hash"] == b["config_hash"]  # where it ran does not change what the result is
    assert a["metrics"] == b["metrics"] and b["executor"]["nodes"] == 2 and b["executor"]["replicas"] == 2
    rows = [[json.loads(line) for line in (tmp_path / d / "per_task.jsonl").read_text().splitlines()] for d in "ab"]
    assert [(r["task_id"], r["samples"], r["statuses"]) for r in rows[0]] == \
           [(r["task_id"], r["samples"], r["statuses"]) for r in rows[1]]


def _sql_items(tmp_path: Path, count: int):
    """Spider gold queries as candidates, on a private copy of their database that the test can delete."""
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.records import Task

    tasks = [t for t in load_tasks("spider-dev", "test") if t.context["engine"] == "sqlite"][:count]
    copies = {}
    out = []
    for t in tasks:
        src = t.context["db_path"]
        if src not in copies:
            copies[src] = tmp_path / f"db{len(copies)}.sqlite"
            shutil.copy(src, copies[src])
        task = Task.from_dict({**t.to_dict(), "context": {**t.context, "db_path": str(copies[src])}})
        out.append((task, f"k{len(out)}", t.reference))
    return out, list(copies.values())


def test_lost_sandbox_actors_have_their_batches_run_elsewhere_and_databases_travel(cluster, tmp_path):
    from codelutra_data.builders.executors import ExecutorSettings
    from codelutra_data.builders.executors.ray import RayExecutor
    from codelutra_data.errors import UserError
    from codelutra_data.sandboxes.settings import SandboxSettings

    items, databases = _sql_items(tmp_path, 12)
    executor = RayExecutor(SandboxSettings(workers=1),
                           ExecutorSettings(executor="ray", ray_address=cluster["address"], sandbox_workers=2))
    try:
        first = executor.run(items[:4])
        assert [e.status for e in first] == ["passed"] * 4
        for db in databases:  # from here on, only the nodes' staged copies exist
            db.unlink()
        many = items * 4
        got = {}
        for i, execution in executor.run_iter(many):
            if not got:
                ray.kill(executor._hosts[0], no_restart=True)
            assert i not in got
            got[i] = execution
        assert sorted(got) == list(range(len(many)))
        assert all(e.status == "passed" for e in got.values()), {e.status: e.feedback for e in got.values()}
        assert {e.node for e in got.values()} <= set(cluster["nodes"])
        # Python needs bubblewrap on every node: the second node lacks it, and the error names it.
        from codelutra_data.builders.tasks import load_tasks

        task = load_tasks("mbpp", "test", 1)[0]
        with pytest.raises(UserError, match=r"^\S+ \(node [0-9a-f]{12}\) cannot sandbox Python"):
            executor.run([(task, "p0", task.reference)])
    finally:
        executor.close()


def test_sandbox_workers_on_the_cluster_are_capped_per_node_by_its_cpus(cluster, tmp_path):
    """`--sandbox-workers 100000` must not fork-bomb the nodes: each node's share is capped at WORKERS_PER_CPU
    per CPU it has, and the recorded number is the number used."""
    from codelutra_data.builders.executors import ExecutorSettings
    from codelutra_data.builders.executors.ray import RayExecutor
    from codelutra_data.machine import WORKERS_PER_CPU
    from codelutra_data.sandboxes.settings import SandboxSettings

    items, _ = _sql_items(tmp_path, 4)
    executor = RayExecutor(SandboxSettings(), ExecutorSettings(executor="ray", ray_address=cluster["address"],
                                                              sandbox_workers=100000))
    try:
        assert [e.status for e in executor.run(items)] == ["passed"] * 4
        cpus = [int(n["Resources"]["CPU"]) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
        described = executor.describe()
        assert described["sandbox_nodes"] == len(cpus) == 2
        assert described["sandbox_workers"] == sum(WORKERS_PER_CPU * c for c in cpus) < 100000
    finally:
        executor.close()


def test_without_ray_installed_the_executor_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from codelutra_data.cli import main\n"
            "sys.exit(main(['build', '--executor', 'ray', '--limit', '1', '--samples', '1']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "pip install 'codelutra-data[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "releases").exists()
    wrong = subprocess.run([str(BIN / "codelutra-data"), "build", "--replicas", "2"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert wrong.returncode != 0 and "need --executor ray" in wrong.stderr


@pytest.mark.slow
def test_a_lost_replica_has_its_batches_generated_elsewhere_with_the_same_samples(cluster):
    from codelutra_data.builders.executors import ExecutorSettings, LocalExecutor
    from codelutra_data.builders.executors.ray import RayExecutor
    from codelutra_data.builders.sampling import generation_work
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.models.base import SamplingParams
    from codelutra_data.models.engine import EngineSettings, LazyBackend
    from codelutra_data.sandboxes.settings import SandboxSettings

    tasks = load_tasks("spider-dev", "train", 6)
    sampling = SamplingParams(0.8, 0.95, 12, stop=("```",))
    works = [generation_work([t], 2, sampling, 0) for t in tasks]
    engine = EngineSettings(backend="transformers", threads=1)
    here = dict(LocalExecutor(SandboxSettings()).generate(LazyBackend("smollm2-135m", engine), works))
    backend = LazyBackend("smollm2-135m", engine)
    executor = RayExecutor(SandboxSettings(), ExecutorSettings(executor="ray", ray_address=cluster["address"], replicas=2))
    try:
        got = {}
        for i, outputs in executor.generate(backend, works):
            if not got:
                ray.kill(next(iter(executor._replicas.values()))[0], no_restart=True)
            assert i not in got
            got[i] = outputs
        assert got == here  # every batch once, each as a local run makes it (seeded per batch)
        assert backend.generated["completions"] == 12 and backend.loaded
    finally:
        executor.close()


@pytest.mark.slow
def test_refine_runs_its_builds_and_evals_on_the_cluster_and_resumes_on_another_executor(cluster, tmp_path):
    from answer_server import answer_server

    with answer_server() as url:  # scripted answers: iteration 1 has pairs to train on, on any machine
        _refine_on_the_cluster(cluster, tmp_path, url)


def _refine_on_the_cluster(cluster, tmp_path, url) -> None:
    args = ["refine", "--tasks", "spider-dev", "--iterations", "1", "--limit", "2", "--samples", "2",
            "--reference-fallback", "--max-steps", "1", "--train-batch-size", "2", "--max-length", "384",
            "--eval-limit", "2", "--backend", "openai", "--base-url", url, "--model", "smollm2-135m",
            "--out", str(tmp_path / "loop"), "--store", str(tmp_path / "r.duckdb"), "--name", "loop"]
    done = _cli([*args, "--executor", "ray", "--ray-address", cluster["address"], "--replicas", "2", "--json"],
                tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads(done.stdout)
    assert state["iterations"][1]["pairs"] >= 1
    import yaml

    built = yaml.safe_load((Path(state["iterations"][1]["release"]) / "build_config.yaml").read_text())
    assert built["stats"]["executor"]["name"] == "ray" and built["stats"]["executor"]["nodes"] == 2
    for t in (0, 1):
        for split in ("validation", "test"):
            results = json.loads((tmp_path / "loop" / "evals" / f"it{t}-{split}" / "results.json").read_text())
            assert results["executor"]["name"] == "ray" and results["executor"]["replicas"] == 2, (t, split)
    # where the work ran is not part of the run's configuration: the finished loop resumes locally, nothing redone
    again = _cli([*args, "--executor", "local", "--resume", "--json"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["iterations"] == state["iterations"]
