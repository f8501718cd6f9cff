"""`eval`: grade a model, an EvalPlus samples file or Spider/BIRD predictions on a suite, and record the result.

The flow is the builders' (task -> sample -> execution), ending in metrics instead of pairs: references are
checked first (a suite whose references fail cannot grade anything), candidates are run in the same
sandboxes, per-task results go to JSONL, and one row per metric goes to the results store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from codelutra_data import __version__
from codelutra_data.benchmarks import interop, store
from codelutra_data.benchmarks.metrics import bootstrap_interval, per_task_pass_at_k, status_histogram
from codelutra_data.benchmarks.suites import Suite, file_digest, load_suite
from codelutra_data.errors import UserError
from codelutra_data.models.base import default_threads
from codelutra_data.records import Execution, Task, content_hash

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class EvalConfig:
    """Everything that decides a result; `config_hash` is computed from it (minus where files are written)."""

    suite: str
    split: str | None = None  # None: the source's test split when it has one, else all tasks
    limit: int = 0
    model: str | None = None
    backend: str = "auto"  # auto: ctranslate2 on CPU where installed, else transformers (resolved and recorded)
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    request_timeout_s: float = 120.0
    threads: int | None = None  # CPU generation threads; default: OMP_NUM_THREADS, else the usable cores
    tensor_parallel_size: int = 1  # vllm backend: GPUs per model
    samples: str | None = None  # EvalPlus JSONL
    predictions: str | None = None  # Spider pred.txt or BIRD JSON
    n: int = 1
    temperature: float = 0.0  # greedy, as in the papers
    top_p: float = 1.0
    max_new_tokens: int | None = None
    k: tuple[int, ...] = (1,)
    seed: int = 0
    batch_size: int = 32
    compare_mode: str = "spider"
    cpu_time_s: float = 5.0
    wall_time_s: float = 30.0
    workers: int = 2
    isolation: str = "bwrap"
    min_reference_pass_rate: float = 0.95
    allow_failing_references: bool = False
    bootstrap_resamples: int = 2000
    store: str = store.DEFAULT_STORE
    out: str | None = None  # results folder; default results/runs/<config hash>/
    write_predictions: str | None = None
    executor: str = "local"  # local | ray: where generation and grading run (never what the result is)
    ray_address: str | None = None
    replicas: int = 1
    sandbox_workers: int | None = None

    def cluster(self):
        from codelutra_data.builders.execute import ClusterOptions

        return ClusterOptions(self.executor, self.ray_address, self.replicas, self.sandbox_workers)

    def validate(self) -> None:
        sources = [x for x in (self.model, self.samples, self.predictions) if x]
        if len(sources) != 1:
            raise UserError("give exactly one of --model, --samples or --predictions (or --check-references)")
        if self.n < 1:
            raise UserError("--n must be at least 1")
        if not self.k or any(k < 1 for k in self.k):
            raise UserError("--k takes positive integers, e.g. --k 1,5,10")
        if self.model and max(self.k) > self.n:
            raise UserError(f"pass@{max(self.k)} needs --n {max(self.k)} or more samples per task (got --n {self.n})")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise UserError("sampling needs temperature >= 0 and 0 < top_p <= 1")
        if self.model and self.n > 1 and self.temperature == 0:
            raise UserError("--n above 1 needs --temperature above 0 (greedy decoding gives the same answer n times)")
        if not 0 <= self.min_reference_pass_rate <= 1:
            raise UserError("--min-reference-pass-rate must be between 0 and 1")
        if self.limit < 0:
            raise UserError("--limit must be 0 (all tasks) or more")
        if self.backend == "openai" and not self.base_url:
            raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        self.cluster().validate()

    def server(self):
        if self.backend != "openai":
            return None
        from codelutra_data.models.openai_api import ServerOptions

        return ServerOptions(self.base_url or "", self.api_key_env, self.concurrency, self.request_timeout_s)

    def hashed(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("store", "out", "write_predictions", "workers", "batch_size", "bootstrap_resamples", "api_key_env",
                    "concurrency", "request_timeout_s", "threads", "tensor_parallel_size", "executor", "ray_address",
                    "replicas", "sandbox_workers"):
            d.pop(key)
        d["k"] = sorted(set(self.k))
        return d


@dataclass
class EvalResult:
    results: dict
    per_task: list[dict] = field(repr=False)
    out_dir: Path | None = None


def machine() -> dict:
    from codelutra_data.builders.build import cpu_name

    return {"cpu": cpu_name(), "platform": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": sys.version.split()[0]}


def model_info(spec: str, backend: str = "transformers", server=None) -> dict:
    """Model id, revision and, for a model trained here, the dataset and method its card names. A local
    directory's revision is a fingerprint of its files, so two different models never share a result row."""
    from codelutra_data.models.base import LazyBackend

    ref = LazyBackend(backend, spec, server=server).ref
    info = {"model": ref.model_id, "model_revision": ref.revision, "model_path": ref.path, "base_model": "",
            "dataset": "", "dataset_version": "", "method": ""}
    path = Path(ref.path)
    if path.is_dir() and ref.revision == "local":
        files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
        info["model_revision"] = "local-" + content_hash(files, length=12)
        report = path / "train_report.json"
        if report.is_file():
            try:
                data = json.loads(report.read_text(encoding="utf-8"))
                info.update(base_model=data.get("base_model", {}).get("model_id", ""), method=data.get("method", ""),
                            dataset=data.get("data", {}).get("name", ""),
                            dataset_version=data.get("data", {}).get("version", ""))
            except (OSError, ValueError, AttributeError):
                pass
    return info


def _select_suite(cfg: EvalConfig) -> Suite:
    """The suite to grade. A predictions file with one entry per task of the whole source (e.g. a Spider
    dev `pred.txt` of 1034 lines, a BIRD `predict_dev.json`) grades the whole source in its own order,
    whatever the split: that is how the official evaluators read those files."""
    suite = load_suite(cfg.suite, cfg.split, cfg.limit or None, cfg.compare_mode)
    if cfg.predictions and not cfg.limit:
        entries = interop.count_predictions(cfg.predictions)
        if entries is not None and entries != len(suite.tasks):
            whole = load_suite(cfg.suite, "all", None, cfg.compare_mode)
            if entries == len(whole.tasks):
                return whole
    return suite


def _candidates(cfg: EvalConfig, suite: Suite) -> dict[str, list[str]] | None:
    if cfg.samples:
        return interop.read_evalplus(cfg.samples, suite.tasks)
    if cfg.predictions:
        if suite.domain != "sql":
            raise UserError("--predictions grades SQL suites (Spider pred.txt, BIRD JSON); "
                            "for Python use --samples with an EvalPlus JSONL file")
        return interop.read_predictions(cfg.predictions, suite.tasks)
    return None


def _generate(cfg: EvalConfig, suite: Suite, progress: Progress | None, executor) -> tuple[dict[str, list[str]], dict]:
    from codelutra_data.builders.build import DEFAULT_MAX_NEW_TOKENS
    from codelutra_data.builders.execute import timed_generation
    from codelutra_data.builders.sampling import generation_work, samples_from
    from codelutra_data.models.base import LazyBackend, SamplingParams, generation_stats

    timing: dict = {}
    started = time.monotonic()
    backend = LazyBackend(cfg.backend, cfg.model, batch_size=cfg.batch_size, timing=timing,
                          server=cfg.server(), threads=cfg.threads,
                          tensor_parallel_size=cfg.tensor_parallel_size)
    sampling = SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[suite.domain],
                              stop=("```",))
    codes: dict[str, list[str]] = {}
    raw: dict[str, list[str]] = {}
    tasks, done = suite.tasks, 0
    chunk = max(1, cfg.batch_size // cfg.n)
    parts = [tasks[start:start + chunk] for start in range(0, len(tasks), chunk)]
    works = [generation_work(part, cfg.n, sampling, cfg.seed) for part in parts]
    made: dict[int, list] = {}
    for i, outputs in timed_generation(executor, backend, works, timing):
        made[i] = samples_from(backend, parts[i], outputs, sampling, cfg.seed)
        done += len(parts[i])
        if progress:
            progress("generate", done, len(tasks))
    for i in range(len(parts)):  # in task order, whichever replica finished first
        for s in made[i]:
            codes.setdefault(s.task_id, []).append(s.code)
            raw.setdefault(s.task_id, []).append(s.raw_output)
    load_s = timing.get("model_load_s", 0.0)
    return codes, {"sampling": sampling.to_dict(), "raw": raw, "model_load_s": load_s,
                   "engine": generation_stats([backend], [], time.monotonic() - started - load_s)}


def run_eval(cfg: EvalConfig, progress: Progress | None = None, check_references_only: bool = False) -> EvalResult:
    """Grade and record. Everything that can be wrong with the input is found before anything is written."""
    from codelutra_data.builders.execute import ExecOptions, check_references, make_executor, reference_timeouts

    started = time.monotonic()
    if not check_references_only:
        cfg.validate()
    if cfg.model:
        from codelutra_data.models.base import resolve_backend

        cfg = dataclasses.replace(cfg, backend=resolve_backend(cfg.backend))
    suite = _select_suite(cfg)
    candidates = None if check_references_only else _candidates(cfg, suite)
    info = model_info(cfg.model, cfg.backend, cfg.server()) if cfg.model else {}
    timing = {}
    options = ExecOptions(cpu_time_s=cfg.cpu_time_s, wall_time_s=cfg.wall_time_s, workers=cfg.workers,
                          isolation=cfg.isolation, compare_mode=cfg.compare_mode)
    checked = [0]

    def reference_done(_execution: Execution) -> None:
        checked[0] += 1
        if progress:
            progress("references", checked[0], len(suite.tasks))

    with make_executor(options, cfg.cluster()) as executor:
        t0 = time.monotonic()
        refs = check_references(executor, suite.tasks, progress=reference_done)
        timing["references_s"] = time.monotonic() - t0
        ref_failures = [{"task_id": t.task_id, "status": e.status, "feedback": e.feedback[:200]}
                        for t, e in zip(suite.tasks, refs) if e.status != "passed"]
        ref_rate = 1 - len(ref_failures) / len(suite.tasks)
        reference_report = {"pass_rate": ref_rate, "failures": ref_failures, "cpu_s": round(sum(e.cpu_s for e in refs), 3)}
        if check_references_only:
            return EvalResult({"suite": suite.describe(), "references": reference_report, "machine": machine()}, [])
        if ref_rate < cfg.min_reference_pass_rate and not cfg.allow_failing_references:
            first = ref_failures[0]
            raise UserError(f"the suite's references pass on only {ref_rate:.1%} of {len(suite.tasks)} tasks "
                            f"(first: {first['task_id']}: {first['status']}); no result is recorded. Check with "
                            f"`eval --check-references`, or override with --allow-failing-references (recorded)")
        generation = {}
        if candidates is None:
            t0 = time.monotonic()
            candidates, generation = _generate(cfg, suite, progress, executor)
            timing["generation_s"] = time.monotonic() - t0
        limits = reference_timeouts(suite.tasks, refs, cfg.cpu_time_s)
        items = [(t, f"{t.task_id}#{i}", code) for t in suite.tasks for i, code in enumerate(candidates[t.task_id])]
        executions: list[Execution | None] = [None] * len(items)
        t0 = time.monotonic()
        for done, (index, execution) in enumerate(executor.run_iter(items, limits), 1):
            executions[index] = execution
            if progress:
                progress("execute", done, len(items))
        timing["execution_s"] = time.monotonic() - t0
        sandbox, sandbox_limits = executor.sandbox_info(suite.domain)
        executor_info = executor.describe()

    per_task, cursor = [], 0
    for task in suite.tasks:
        count = len(candidates[task.task_id])
        mine = executions[cursor:cursor + count]
        cursor += count
        row = {"task_id": task.task_id, "n": count, "correct": sum(e.status == "passed" for e in mine),
               "statuses": [e.status for e in mine], "passed": [e.status == "passed" for e in mine],
               "samples": candidates[task.task_id], "feedback": [e.feedback for e in mine]}
        if generation:
            row["raw_outputs"] = generation["raw"][task.task_id]
        per_task.append(row)
    counts = [(r["n"], r["correct"]) for r in per_task]
    n_min = min(n for n, _ in counts)
    ks = sorted({k for k in cfg.k if k <= n_min}) or [1]
    if cfg.samples and any(k > n_min for k in cfg.k):
        raise UserError(f"pass@{max(cfg.k)} needs at least {max(cfg.k)} samples for every task; "
                        f"the samples file has {n_min} for some")
    metrics = {}
    for k in ks:
        values = per_task_pass_at_k(counts, k)
        for row, v in zip(per_task, values):
            row[f"pass@{k}"] = v
        low, high = bootstrap_interval(values, resamples=cfg.bootstrap_resamples, seed=cfg.seed)
        metrics[suite.metric_name(k)] = {"value": sum(values) / len(values), "ci95": [low, high], "k": k}
    source = "model" if cfg.model else ("samples" if cfg.samples else "predictions")
    input_file = cfg.samples or cfg.predictions
    hashed = cfg.hashed()
    hashed.update(suite_hash=suite.hash, split=suite.split, model_revision=info.get("model_revision", ""),
                  input_digest=file_digest(input_file) if input_file else "")
    config_hash = content_hash(hashed)
    out_dir = (Path(cfg.out) if cfg.out else Path(cfg.store).parent / "runs" / config_hash).resolve()
    results = {
        "config_hash": config_hash, "config": dataclasses.asdict(cfg), "suite": suite.describe(), "n": n_min,
        "source": source, "model": info, "sampling": generation.get("sampling"),
        "generation": generation.get("engine"),
        "metrics": metrics, "headline": suite.metric_name(ks[0]),
        "status_histogram": status_histogram(s for r in per_task for s in r["statuses"]),
        "references": {**reference_report, "override": bool(cfg.allow_failing_references
                                                             and ref_rate < cfg.min_reference_pass_rate)},
        "sandbox": sandbox, "limits": sandbox_limits,
        "machine": {**machine(), "threads": cfg.threads or default_threads()}, "executor": executor_info,
        "tool_version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timing": {k: round(v, 2) for k, v in {**timing, "total_s": time.monotonic() - started}.items()},
        "per_task_file": str(out_dir / "per_task.jsonl"),
    }
    _write_results(out_dir, results, per_task)
    if cfg.write_predictions:
        interop.write_predictions(cfg.write_predictions, suite.tasks, candidates)
    store.write_rows(cfg.store, store_rows(results))
    return EvalResult(results, per_task, out_dir)


def _write_results(out_dir: Path, results: dict, per_task: list[dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("per_task.jsonl", "".join(json.dumps(r) + "\n" for r in per_task)),
                       ("results.json", json.dumps(results, indent=1, default=str))):
        tmp = out_dir / f".{name}.partial-{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out_dir / name)


def store_rows(results: dict) -> list[dict]:
    cfg, suite, model = results["config"], results["suite"], results["model"]
    label = model.get("model") or Path(cfg.get("samples") or cfg.get("predictions") or "").name
    common = {
        "config_hash": results["config_hash"], "n": results["n"],
        "tasks": suite["tasks"], "suite": suite["name"], "split": suite["split"], "suite_version": suite["version"],
        "suite_hash": suite["hash"], "compare_mode": suite["compare_mode"], "model": label,
        "model_revision": model.get("model_revision", ""), "model_path": model.get("model_path", ""),
        "base_model": model.get("base_model", ""), "dataset": model.get("dataset", ""),
        "dataset_version": model.get("dataset_version", ""), "method": model.get("method", ""),
        "source": results["source"], "temperature": cfg["temperature"] if results["source"] == "model" else None,
        "reference_pass_rate": results["references"]["pass_rate"],
        "references_override": results["references"]["override"],
        "cpu_time_s": cfg["cpu_time_s"], "wall_time_s": cfg["wall_time_s"],
        "date": dt.datetime.fromisoformat(results["date"]).replace(tzinfo=None),
        "machine": results["machine"]["cpu"], "tool_version": results["tool_version"],
        "config": json.dumps(cfg, sort_keys=True), "results_file": str(Path(results["per_task_file"]).parent / "results.json"),
    }
    return [{**common, "metric": name, "value": m["value"], "ci_low": m["ci95"][0], "ci_high": m["ci95"][1],
             "k": m["k"]} for name, m in results["metrics"].items()]
