"""Builds at scale: `--batch-size auto` (each engine's own chunk size, recorded), execution overlapped with
generation (the same records as taking turns), and calls split to what memory holds.

Answers come from the deterministic loopback server of the pinned-output tests, so releases can be compared
digest for digest on any machine; verdicts come from the real sandboxes."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from answer_server import answer, answer_server
from codelutra_data.cli import main
from test_pinned_outputs import release_digests


@pytest.fixture(scope="module")
def server():
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks("spider-dev", "train", 40)
    with answer_server({t.prompt[-1]["content"]: t.reference for t in tasks[::2]}) as url:
        yield url


def build(capsys, tmp_path: Path, url: str, *args: str) -> tuple[Path, dict]:
    capsys.readouterr()
    code = main(["build", "--backend", "openai", "--base-url", url, "--model", "served-model",
                 "--runs-dir", str(tmp_path / "runs"), "--releases-dir", str(tmp_path / "releases"), "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    stats = json.loads(out)
    return Path(stats["release"]), stats


@pytest.mark.parametrize("mode", [
    ["--tasks", "spider-dev", "--limit", "12", "--samples", "4", "--batch-size", "8"],
    ["--mode", "trajectories", "--tasks", "spider-dev", "--limit", "8", "--max-rounds", "3", "--batch-size", "2",
     "--tokenizer", "smollm2-135m"],
], ids=["pairs", "trajectories"])
def test_overlap_gives_the_same_release_as_taking_turns(capsys, tmp_path, server, mode):
    """Forced on (as on a CPU machine) and forced off: chunks of 2 tasks, so several are in flight at once."""
    on, on_stats = build(capsys, tmp_path / "on", server, *mode, "--overlap", "on")
    off, off_stats = build(capsys, tmp_path / "off", server, *mode, "--overlap", "off")
    assert on_stats["generation"]["overlap"] is True and off_stats["generation"]["overlap"] is False
    assert on_stats["generation"]["overlap_chosen"] == "--overlap on"
    assert release_digests(on) == release_digests(off)
    for config in ("samples", "pairs", "focal_pairs", "trajectories", "sft"):
        if (on / config).is_dir():
            assert sorted(p.name for p in (on / config).iterdir()) == sorted(p.name for p in (off / config).iterdir())


def test_auto_batch_size_is_the_engines_and_recorded(capsys, tmp_path, server):
    release, stats = build(capsys, tmp_path / "a", server, "--limit", "2", "--samples", "2")
    generation = stats["generation"]
    assert generation["batch_size"] == 4 * 8 * 8  # openai: 4 prompts x 8 samples x --concurrency 8
    assert "--concurrency 8" in generation["batch_size_chosen"]
    assert generation["overlap"] is True and "openai" in generation["overlap_chosen"]  # auto: a server generates
    card = (release / "README.md").read_text()
    assert "- batches: 256 sequences per generate call (openai:" in card
    config = yaml.safe_load((release / "build_config.yaml").read_text())
    assert config["stats"]["generation"]["batch_size"] == 256

    _, stats = build(capsys, tmp_path / "b", server, "--limit", "2", "--samples", "2", "--concurrency", "2")
    assert stats["generation"]["batch_size"] == 64
    _, stats = build(capsys, tmp_path / "c", server, "--limit", "2", "--samples", "2", "--batch-size", "6",
                     "--overlap", "off")
    assert (stats["generation"]["batch_size"], stats["generation"]["batch_size_chosen"]) == (6, "--batch-size")
    assert stats["generation"]["overlap_chosen"] == "--overlap off"


def test_cpu_engines_keep_their_measured_size():
    """On CPU the auto size is the 32 that measured fastest, so CPU builds keep today's chunks (and samples)."""
    import torch

    from codelutra_data.models.ct2 import CTranslate2Backend
    from codelutra_data.models.engine import EngineSettings, resolved
    from codelutra_data.models.hf import CPU_BATCH, GPU_BATCH, TransformersBackend
    from codelutra_data.models.vllm_backend import VLLMBackend

    engine = EngineSettings()
    assert engine.batch_size == "auto"
    assert resolved(engine, CTranslate2Backend)[0].batch_size == 32
    assert resolved(engine, TransformersBackend)[0].batch_size == (GPU_BATCH if torch.cuda.is_available() else CPU_BATCH)
    assert resolved(engine, VLLMBackend)[1] ["used"] == 1024
    assert resolved(EngineSettings(batch_size=48), VLLMBackend)[1] == {"asked": 48, "used": 48, "why": "--batch-size"}


class _FailsAfter(BaseHTTPRequestHandler):
    """Answers the first `allowed` requests as the answer server does, then refuses every later one (401)."""

    allowed = 2
    seen: list = []
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.seen.append(1)
            refuse = len(self.seen) > self.allowed
        if refuse:
            data, status = json.dumps({"error": {"message": "key revoked"}}).encode(), 401
        else:
            choices = [{"index": i, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer(body["messages"], int(body.get("seed", 0)),
                                                                           i, {})}}
                       for i in range(int(body.get("n", 1)))]
            data, status = json.dumps({"choices": choices, "usage": {"completion_tokens": 1}}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def failing_server():
    handler = type("Handler", (_FailsAfter,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_error_while_generating_ahead_is_one_line_and_keeps_what_was_done(capsys, tmp_path):
    """The server fails during the second chunk, generated in the background while the first one executes:
    one `error:` line, exit 2, and the first chunk's samples and executions stay in the run store."""
    with failing_server() as url:
        capsys.readouterr()
        code = main(["build", "--backend", "openai", "--base-url", url, "--model", "served-model", "--limit", "6",
                     "--samples", "4", "--batch-size", "8", "--concurrency", "1", "--overlap", "on",
                     "--name", "fails", "--version", "0.1.0", "--runs-dir", str(tmp_path / "runs"),
                     "--releases-dir", str(tmp_path / "releases")])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "401" in lines[0], err
    assert "Traceback" not in out + err
    run = tmp_path / "runs" / "fails" / "0.1.0"
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    executions = [json.loads(line) for line in (run / "executions.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and {e["sample_id"] for e in executions} == {s["sample_id"] for s in samples}
    assert not (tmp_path / "releases" / "fails").exists()


def test_a_call_is_split_to_what_memory_holds(monkeypatch):
    """Free memory reported as room for five sequences: a call for 3 prompts x 2 samples at --batch-size 32 runs
    as 2 prompts (4 sequences), then 1 (2 sequences), and gives 2 completions per prompt."""
    from codelutra_data.models import memory
    from codelutra_data.models.base import SamplingParams
    from codelutra_data.models.engine import load_backend

    backend = load_backend("transformers", "smollm2-135m", batch_size=32, threads=1)
    sampling = SamplingParams(temperature=0.7, max_new_tokens=4)
    prompts = [[{"role": "user", "content": f"Say {word}."}] for word in ("one", "two", "three")]
    longest = max(len(backend.tokenizer(backend._render(p), add_special_tokens=False)["input_ids"]) for p in prompts)
    per_sequence = memory.bytes_per_sequence(backend.model.config, longest + sampling.max_new_tokens, 4)
    monkeypatch.setattr("codelutra_data.machine.available_memory", lambda: int(5.5 * per_sequence / memory.MEMORY_SHARE))
    calls = []
    generate = backend.model.generate
    monkeypatch.setattr(backend.model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0]
                                                                              * kw["num_return_sequences"])
                        or generate(**kw))
    out = backend.generate(prompts, 2, sampling, seed=0)
    assert calls == [4, 2]
    assert [len(row) for row in out] == [2, 2, 2]
    greedy = backend.generate(prompts[:1], 2, SamplingParams(temperature=0.0, max_new_tokens=4), seed=0)
    assert calls[2:] == [1] and greedy[0][0] == greedy[0][1]  # greedy: one sequence, copied (it repeats anyway)


def test_a_streamed_samples_table_reads_as_a_held_one(capsys, tmp_path, server, monkeypatch):
    """The release's samples are streamed from the run store a row group at a time: with groups of 5 rows the
    release is the same, digest for digest, as with the default groups, and its files hold many row groups."""
    import pyarrow.parquet as pq

    from codelutra_data.builders.release import write

    args = ["--tasks", "spider-dev", "--limit", "6", "--samples", "4", "--batch-size", "8"]
    whole, _ = build(capsys, tmp_path / "whole", server, *args)
    monkeypatch.setattr(write, "ROWS_PER_GROUP", 5)
    grouped, _ = build(capsys, tmp_path / "grouped", server, *args)
    assert release_digests(grouped) == release_digests(whole)
    files = sorted((grouped / "samples").glob("*.parquet"))
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 5  # 24 rows
    assert pq.read_schema(files[0]) == pq.read_schema(sorted((whole / "samples").glob("*.parquet"))[0])


def test_the_gpu_script_refuses_in_one_line_without_a_gpu(capsys, tmp_path):
    import torch

    from codelutra_data.benchmarks.speed import gpu

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the script would measure it")
    assert gpu.main(["--out", str(tmp_path / "speed")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA GPU" in err[0] and not (tmp_path / "speed").exists()
    assert gpu.main(["--out", str(tmp_path / "speed"), "--batch-sizes", "64,0"]) == 2
    assert "--batch-sizes" in capsys.readouterr().err


def test_speed_measurement_takes_turns_on_prompts_of_its_own():
    """The loop both speed scripts share, on the real bundled model: every backend and size measured in every
    round, each (round, size) on prompts no other call of that round or size got."""
    from codelutra_data.benchmarks.speed.generation import measure
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.models.base import SamplingParams
    from codelutra_data.models.engine import load_backend

    class Recording:
        def __init__(self, inner):
            self.inner, self.version, self.calls = inner, inner.version, []

        def generate(self, prompts, n, sampling, seed):
            self.calls.append([json.dumps(p) for p in prompts])
            return self.inner.generate(prompts, n, sampling, seed)

    backend = Recording(load_backend("transformers", "smollm2-135m", threads=1))
    totals = measure({"transformers": backend}, load_tasks("spider-dev", "train", 10), [2, 4], 2,
                     SamplingParams(0.8, 0.95, 4), 2, len)
    assert set(totals) == {("transformers", 2), ("transformers", 4)}
    assert all(seconds > 0 and chars > 0 for seconds, chars in totals.values())
    assert [len(c) for c in backend.calls] == [1, 2, 1, 2]
    seen = [p for call in backend.calls for p in call]
    assert len(seen) == len(set(seen)) == 6
