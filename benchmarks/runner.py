"""`eval`: grade a model, an EvalPlus samples file or Spider/BIRD predictions on a suite, and record the result.

The flow is the builders' (task -> sample -> execution), ending in metrics instead of pairs: references are
checked first (a suite whose references fail cannot grade anything), candidates are run in the same
sandboxes, per-task results go to JSONL, and one row per metric goes to the results store.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from codelutra_data import __version__
from codelutra_data.benchmarks import interop, results_files, store
from codelutra_data.benchmarks.store import LOCK_WAIT_S
from codelutra_data.benchmarks.metrics import bootstrap_interval, per_task_pass_at_k, status_histogram
from codelutra_data.benchmarks.suites import Suite, file_digest, load_suite
from codelutra_data.benchmarks.contamination import training_overlap
from codelutra_data.benchmarks.variants import grade_variant
from codelutra_data.builders.executors import ExecutorSettings
from codelutra_data.builders.sampling import SamplingSettings
from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.builders.tasks.window import DateWindow
from codelutra_data.config import MAX_SEED, Settings, group, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.machine import default_threads, machine
from codelutra_data.models.engine import EngineSettings
from codelutra_data.models.spec import ModelRef
from codelutra_data.records import content_hash
from codelutra_data.sandboxes.settings import SandboxSettings

Progress = Callable[[str, int, int], None]  # (stage, done, total)
SOURCES = "give exactly one of --model, --samples or --predictions (or --check-references)"
# Where results are written and how the work runs: not part of a result's identity (its config hash).
NOT_HASHED = {"store", "out", "write_predictions", "store_wait_s", "workers", "batch_size", "bootstrap_resamples", "api_key_env",
              "concurrency", "request_timeout_s", "threads", "tensor_parallel_size", *ExecutorSettings.layout()}


@settings
class EvalConfig(Settings):
    """Everything that decides a result; `config_hash` is computed from it (minus where files are written)."""

    suite: str = setting(help="spider-dev, humaneval, mbpp, a Spider/BIRD folder, a task .jsonl file or a Hub dataset "
                         "hf:ORG/NAME[:CONFIG][@REVISION].", path="input")
    task_format: TaskFormatSettings = group(TaskFormatSettings)
    split: str | None = setting(None, "Split to grade; 'all' for every task.", shown="the source's test split, else all")
    limit: int = setting(0, "Grade only the first N tasks of the split.", shown="0 = all", at_least=0)
    subset: str = setting("full", "BigCodeBench: full, or hard (its 148 hardest problems: the bigcodebench-hard "
                          "suite).", choices=("full", "hard"))
    since: str | None = setting(None, "Grade only problems dated on or after this day, YYYY-MM-DD (LiveCodeBench's "
                                "contest_date); part of the suite's name in results and the leaderboard.")
    until: str | None = setting(None, "Grade only problems dated on or before this day, YYYY-MM-DD (as "
                                "lcb_runner: midnight of that day).")
    model: str | None = setting(None, "Model to sample: bundled name, local directory (e.g. a trained model) or Hub id.",
                                path="input")
    engine: EngineSettings = group(EngineSettings)
    samples: str | None = setting(None, "Grade an EvalPlus-format JSONL (task_id + solution or completion); no model.",
                                  path="input")
    predictions: str | None = setting(None, "Grade SQL predictions: Spider pred.txt (one query a line, suite order) "
                                      "or BIRD JSON.", path="input")
    n: int = setting(1, "Samples per task.", at_least=1, at_most=10_000)
    sampling: SamplingSettings = group(SamplingSettings, temperature=0.0, top_p=1.0)  # greedy, as in the papers
    k: tuple[int, ...] = setting((1,), "pass@k values to report, k <= n, e.g. 1,5,10.", flags=("--k",), option=False)
    seed: int = setting(0, "Sampling and bootstrap seed.", at_least=0, at_most=MAX_SEED)
    sandbox: SandboxSettings = group(SandboxSettings)
    min_reference_pass_rate: float = setting(0.95, "Refuse to record a result when fewer references pass.",
                                             at_least=0, at_most=1)
    allow_failing_references: bool = setting(False, "Record anyway (the override is recorded).")
    bootstrap_resamples: int = setting(2000, "Resamples for the 95% intervals.", option=False, at_least=1,
                                       at_most=1_000_000)
    store: str = setting(store.DEFAULT_STORE, "Results store (DuckDB file).", path="output-file")
    out: str | None = setting(None, "Folder for results.json and per_task.jsonl.",
                              shown="<store folder>/runs/<config hash>", path="output-folder")
    write_predictions: str | None = setting(None, "Also write what was graded: .jsonl (EvalPlus), .txt (Spider) or "
                                            ".json (BIRD).", path="output-file")
    store_wait_s: float = setting(LOCK_WAIT_S, "Seconds to wait for a results store another process is "
                                  "writing.", flags=("--store-wait",), at_least=0, at_most=24 * 3600)
    where: ExecutorSettings = group(ExecutorSettings)

    def check(self) -> None:
        self.window()
        self.suite_spec()
        if len(self.sources()) > 1:
            raise UserError(SOURCES)
        if not self.k or any(k < 1 for k in self.k):
            raise UserError("--k takes positive integers, e.g. --k 1,5,10")
        if self.model and max(self.k) > self.n:
            raise UserError(f"pass@{max(self.k)} needs --n {max(self.k)} or more samples per task (got --n {self.n})")
        if self.model and self.n > 1 and self.sampling.temperature == 0:
            raise UserError("--n above 1 needs --temperature above 0 (greedy decoding gives the same answer n times)")

    def sources(self) -> list[str]:
        """What is graded: a model, a samples file or a predictions file (exactly one, but for --check-references)."""
        return [x for x in (self.model, self.samples, self.predictions) if x]

    def suite_spec(self) -> str:
        """The suite graded: `--subset hard` names BigCodeBench's hard suite."""
        if self.subset == "full":
            return self.suite
        if self.suite not in ("bigcodebench", "bigcodebench-hard"):
            raise UserError(f"--subset {self.subset} applies to --suite bigcodebench, not {self.suite!r}")
        return "bigcodebench-hard"

    def window(self) -> DateWindow | None:
        return DateWindow(self.since, self.until) or None

    def hashed(self) -> dict:
        d = {k: v for k, v in self.flat().items() if k not in NOT_HASHED
             and not (k in ("since", "until", "sandbox_python") and v is None)
             and not (k == "subset" and v == "full")}  # results from before these options keep their hash
        d["k"] = sorted(set(self.k))
        return d


@dataclass
class EvalResult:
    results: dict
    per_task: list[dict] = field(repr=False)
    out_dir: Path | None = None


def model_info(ref: ModelRef) -> dict:
    """Model id, revision and, for a model trained here, the dataset and method its card names. A local
    directory's revision is a fingerprint of its files, so two different models never share a result row."""
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
    suite = load_suite(cfg.suite_spec(), cfg.split, cfg.limit or None, cfg.sandbox.compare_mode, cfg.task_format,
                       cfg.window())
    if cfg.predictions and not cfg.limit:
        entries = interop.count_predictions(cfg.predictions)
        if entries is not None and entries != len(suite.tasks):
            whole = load_suite(cfg.suite_spec(), "all", None, cfg.sandbox.compare_mode, cfg.task_format,
                               cfg.window())
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


def _generate(cfg: EvalConfig, suite: Suite, progress: Progress | None, executor, backend,
              timeouts: dict[str, float], timing: dict) -> tuple[dict[str, list[str]], list, dict]:
    """Sample the model and grade each chunk as it arrives: the candidates per task, their executions in task
    order, and what the results say about generation."""
    from codelutra_data.builders.executors import overlap_choice
    from codelutra_data.builders.pipeline import sample_and_execute
    from codelutra_data.models.engine import generation_stats
    from codelutra_data.records import Execution, Sample
    from codelutra_data.store import MemoryStore

    sampling = cfg.sampling.params(suite.domain)
    memory, done = MemoryStore(), [0, 0]
    overlap, why = overlap_choice(cfg.where.overlap, backend, executor)

    def chunk_done(chunk, samples: list[Sample], _new: int, _executed: int) -> None:
        done[0] += len(chunk)
        done[1] += len(samples)
        if progress:
            progress("generate", done[0], len(suite.tasks))
            progress("execute", done[1], len(suite.tasks) * cfg.n)

    keys = sample_and_execute(executor, backend, suite.tasks, cfg.n, sampling, cfg.seed, cfg.engine.batch_size,
                              memory, timeouts, timing, chunk_done, overlap)
    samples = {t.task_id: [Sample.from_dict(memory.samples.get(k)) for k in keys[t.task_id]] for t in suite.tasks}
    executions = [Execution.from_dict(memory.executions.get(k)) for t in suite.tasks for k in keys[t.task_id]]
    engine = {**generation_stats([backend], set(), timing.get("generation_s", 0.0)), "overlap": overlap,
              "overlap_chosen": why}
    return ({t: [s.code for s in rows] for t, rows in samples.items()}, executions,
            {"sampling": sampling.to_dict(), "raw": {t: [s.raw_output for s in rows] for t, rows in samples.items()},
             "engine": engine})


def _grade(executor, suite: Suite, candidates: dict[str, list[str]], timeouts: dict[str, float],
           progress: Progress | None) -> list:
    items = [(t, f"{t.task_id}#{i}", code) for t in suite.tasks for i, code in enumerate(candidates[t.task_id])]
    executions: list = [None] * len(items)
    for done, (index, execution) in enumerate(executor.run_iter(items, timeouts), 1):
        executions[index] = execution
        if progress:
            progress("execute", done, len(items))
    return executions


def run_eval(cfg: EvalConfig, progress: Progress | None = None, check_references_only: bool = False) -> EvalResult:
    """Grade and record. Everything that can be wrong with the input is found before anything is written."""
    from codelutra_data.builders.executors import make_executor
    from codelutra_data.builders.pipeline import References

    started = time.monotonic()
    cfg.validate()
    if not check_references_only and not cfg.sources():
        raise UserError(SOURCES)
    timing: dict = {}
    backend = None
    if cfg.model:
        from codelutra_data.models.engine import LazyBackend

        backend = LazyBackend(cfg.model, cfg.engine, timing)
        cfg = EvalConfig(**{**cfg.__dict__, "engine": backend.engine})  # `auto` resolved: what the result records
    suite = _select_suite(cfg)
    if not check_references_only:
        results_files.check_outputs(cfg.store, cfg.out, cfg.write_predictions, suite.tasks)
    candidates = None if check_references_only else _candidates(cfg, suite)
    info = model_info(backend.ref) if backend else {}
    contamination = training_overlap(info["model_path"], suite.name, suite.tasks) if info.get("dataset") else None
    checked = [0]

    def reference_done(_execution) -> None:
        checked[0] += 1
        if progress:
            progress("references", checked[0], len(suite.tasks))

    with make_executor(cfg.sandbox, cfg.where) as executor:
        refs = References.check(executor, suite.tasks, progress=reference_done)
        timing["references_s"] = refs.seconds
        ref_failures = [{"task_id": t.task_id, "status": e.status, "feedback": e.feedback[:200]}
                        for t, e in refs.failures]
        reference_report = {"pass_rate": refs.pass_rate, "failures": ref_failures,
                            "cpu_s": round(sum(e.cpu_s for e in refs.executions if e is not None), 3),
                            **({"unchecked": refs.unchecked} if refs.unchecked else {}),
                            **({"missing_libraries": dict(refs.missing_libraries())}
                               if refs.missing_libraries() else {})}
        if check_references_only:
            return EvalResult({"suite": suite.describe(), "references": reference_report, "machine": machine()}, [])
        if not cfg.allow_failing_references:
            refs.require(cfg.min_reference_pass_rate, "the suite's references",
                         "no result is recorded. Check with `eval --check-references`, or override with "
                         "--allow-failing-references (recorded)")
        timeouts = refs.timeouts(cfg.sandbox.cpu_time_s)
        generation = {}
        t0 = time.monotonic()
        if candidates is None:
            candidates, executions, generation = _generate(cfg, suite, progress, executor, backend, timeouts, timing)
        else:
            executions = _grade(executor, suite, candidates, timeouts, progress)
            timing["execution_s"] = time.monotonic() - t0
        variants = {name: grade_variant(executor, suite.tasks, name, candidates, cfg.sandbox.cpu_time_s,
                                        cfg.min_reference_pass_rate, not cfg.allow_failing_references, progress)
                    for name in suite.variants}
        if variants:
            reference_report["variants"] = {name: report for name, (_, report) in variants.items()}
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
        for name, (graded, _) in variants.items():  # EvalPlus: plus counts a sample only when base passes too
            theirs = graded[cursor - count:cursor]
            row[f"{name}_statuses"] = [e.status for e in theirs]
            row[f"{name}_correct"] = sum(e.status == "passed" for e in theirs)
            if not task.context["variants"][name].get("beside"):  # an official rule is reported, never required
                row["passed"] = [p and e.status == "passed" for p, e in zip(row["passed"], theirs)]
                row["correct"] = sum(row["passed"])
        if task.context.get("official_step"):
            row["official_passed"] = official_passes(task, mine)
            row["official_correct"] = sum(row["official_passed"])
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
        steps_rule = ["official"] if "official_correct" in per_task[0] and "official" not in variants else []
        for name in [*variants, *steps_rule]:
            values = per_task_pass_at_k([(r["n"], r[f"{name}_correct"]) for r in per_task], k)
            low, high = bootstrap_interval(values, resamples=cfg.bootstrap_resamples, seed=cfg.seed)
            metrics[f"{name}_{suite.metric_name(k)}"] = {"value": sum(values) / len(values), "ci95": [low, high],
                                                         "k": k}
    source = "model" if cfg.model else ("samples" if cfg.samples else "predictions")
    input_file = cfg.samples or cfg.predictions
    hashed = cfg.hashed()
    hashed.update(suite_hash=suite.hash, split=suite.split, model_revision=info.get("model_revision", ""),
                  input_digest=file_digest(input_file) if input_file else "")
    config_hash = content_hash(hashed)
    out_dir = (Path(cfg.out) if cfg.out else Path(cfg.store).parent / "runs" / config_hash).resolve()
    results = {
        "config_hash": config_hash, "config": cfg.flat(), "suite": suite.describe(), "n": n_min,
        "source": source, "model": info, "sampling": generation.get("sampling"),
        "generation": generation.get("engine"),
        "metrics": metrics, "headline": suite.metric_name(ks[0]),
        "status_histogram": status_histogram(s for r in per_task for s in r["statuses"]),
        "references": {**reference_report, "override": bool(cfg.allow_failing_references
                                                             and refs.pass_rate < cfg.min_reference_pass_rate)},
        "sandbox": sandbox, "limits": sandbox_limits,
        "machine": {**machine(), "threads": cfg.engine.threads or default_threads()}, "executor": executor_info,
        "tool_version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timing": {k: round(v, 2) for k, v in {**timing, "total_s": time.monotonic() - started}.items()},
        "per_task_file": str(out_dir / "per_task.jsonl"),
        **({"contamination": contamination} if contamination else {}),
        **official_rule(suite.tasks, per_task),
    }
    predictions = ((cfg.write_predictions, interop.predictions_text(cfg.write_predictions, suite.tasks, candidates))
                   if cfg.write_predictions else None)
    results_files.commit(cfg.store, out_dir, results, per_task, store_rows(results), predictions, cfg.store_wait_s)
    return EvalResult(results, per_task, out_dir)


def official_passes(task, executions) -> list[bool]:
    """Which samples the suite's official rule alone passes: ours, and those whose first failure comes after the
    step that is that rule (`context["official_step"]`: BigCodeBench's, before our skip checks)."""
    steps = [source.strip() for source, _ in task.context["tests"]]
    official = steps.index(task.context["official_step"])
    return [e.status == "passed" or (e.failing_test in steps and steps.index(e.failing_test) > official)
            for e in executions]


def official_rule(tasks, per_task: list[dict]) -> dict:
    """Beside our verdicts, how many samples the official rule alone would have passed, where it accepts what
    ours does not."""
    rows = [r for r in per_task if "official_passed" in r]
    if not rows:
        return {}
    rule = next(t.context["official_step"] for t in tasks if t.context.get("official_step"))
    return {"official_rule": {"passed": sum(sum(r["official_passed"]) for r in rows),
                              "ours": sum(r["correct"] for r in rows), "samples": sum(r["n"] for r in rows),
                              "step": rule}}


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
    # The official rule's metrics stay in results.json and eval's summary, beside ours: boards rank our verdicts.
    return [{**common, "metric": name, "value": m["value"], "ci_low": m["ci95"][0], "ci_high": m["ci95"][1],
             "k": m["k"]} for name, m in results["metrics"].items() if not name.startswith("official_")]
