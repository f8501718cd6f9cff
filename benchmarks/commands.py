"""`eval` and `leaderboard`: thin click shells over benchmarks.runner and benchmarks.leaderboard."""

from __future__ import annotations

import json

import click

from codelutra_data.errors import UserError


def _ks(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        ks = tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--k takes comma-separated integers, e.g. 1,5,10 (got {value!r})") from None
    if not ks:
        raise UserError("--k takes comma-separated integers, e.g. 1,5,10")
    return ks


@click.command("eval")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options; flags override it.")
@click.option("--suite", help="spider-dev, humaneval, mbpp, a Spider/BIRD folder or a task .jsonl file.")
@click.option("--split", help="Split to grade; 'all' for every task. [the source's test split, else all]")
@click.option("--limit", type=int, help="Grade only the first N tasks of the split. [0 = all]")
@click.option("--model", help="Model to sample: bundled name, local directory (e.g. a trained model) or Hub id.")
@click.option("--backend", help="Model backend: transformers, ctranslate2 (fast CPU, float32), llamacpp (a .gguf file on CPU), vllm (GPU), or openai (any OpenAI-compatible server). [auto: ctranslate2 on CPU, vllm on a GPU where installed, else transformers]")
@click.option("--base-url", help="openai backend: the server's API root, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", help="openai backend: environment variable holding the API key (never recorded). [OPENAI_API_KEY]")
@click.option("--concurrency", type=int, help="openai backend: requests in flight. [8]")
@click.option("--request-timeout", "request_timeout_s", type=float, help="openai backend: seconds per request before a retry. [120]")
@click.option("--threads", type=int, help="CPU generation threads. [OMP_NUM_THREADS, else the cores this process may use]")
@click.option("--tensor-parallel-size", type=int, help="vllm backend: GPUs per model. [1]")
@click.option("--samples", help="Grade an EvalPlus-format JSONL (task_id + solution or completion); no model.")
@click.option("--predictions", help="Grade SQL predictions: Spider pred.txt (one query a line, suite order) or BIRD JSON.")
@click.option("--n", type=int, help="Samples per task. [1]")
@click.option("--temperature", type=float, help="[0: greedy, as in the papers]")
@click.option("--top-p", type=float, help="[1.0]")
@click.option("--max-new-tokens", type=int, help="[128 for SQL, 384 for Python]")
@click.option("--k", "k_text", help="pass@k values to report, k <= n, e.g. 1,5,10. [1]")
@click.option("--seed", type=int, help="Sampling and bootstrap seed. [0]")
@click.option("--batch-size", type=int, help="Sequences generated per batch. [32]")
@click.option("--compare-mode", type=click.Choice(["spider", "set", "ordered"]), help="SQL result comparison. [spider]")
@click.option("--cpu-time", "--timeout", "cpu_time_s", type=float, help="CPU seconds per program (Python: up to 10x the reference's). [5]")
@click.option("--wall-time", "wall_time_s", type=float, help="Wall-clock backstop per program. [30]")
@click.option("--workers", type=int, help="Sandbox worker processes. [2]")
@click.option("--executor", type=click.Choice(["local", "ray"]), help="Where the work runs: in this process, or on a Ray cluster (model replicas and sandbox pools as actors; pip install 'codelutra-data[ray]'). Results are the same. [local]")
@click.option("--ray-address", help="ray: the cluster to join (auto: the one `ray start` runs here; or host:port). [a Ray instance started for this run]")
@click.option("--replicas", type=int, help="ray: model replicas, one backend each (vllm replicas take --tensor-parallel-size GPUs, others --threads CPUs). [1]")
@click.option("--sandbox-workers", type=int, help="ray: sandbox processes across the cluster, split over its nodes. [each node's CPUs]")
@click.option("--isolation", type=click.Choice(["bwrap", "none"]), help="Python sandbox isolation. [bwrap]")
@click.option("--min-reference-pass-rate", type=float, help="Refuse to record a result when fewer references pass. [0.95]")
@click.option("--allow-failing-references", is_flag=True, default=None, help="Record anyway (the override is recorded).")
@click.option("--check-references", is_flag=True, help="Only run the suite's reference solutions and report their pass rate.")
@click.option("--store", help="Results store (DuckDB file). [results/results.duckdb]")
@click.option("--out", help="Folder for results.json and per_task.jsonl. [<store folder>/runs/<config hash>]")
@click.option("--write-predictions", help="Also write what was graded: .jsonl (EvalPlus), .txt (Spider) or .json (BIRD).")
@click.option("--json", "as_json", is_flag=True, help="Print the results object as JSON.")
def eval_command(config_file, k_text, check_references, as_json, **options) -> None:
    """Grade a model, samples or predictions on a suite; record the result in the results store."""
    from rich.console import Console

    from codelutra_data.benchmarks.runner import EvalConfig, run_eval
    from codelutra_data.config import load_yaml, merge

    file_values = load_yaml(config_file) if config_file else {}
    if "k" in file_values and isinstance(file_values["k"], (str, int)):
        file_values["k"] = _ks(str(file_values["k"]))
    options["k"] = _ks(k_text)
    if not (options.get("suite") or file_values.get("suite")):
        raise UserError("--suite is required (spider-dev, humaneval, mbpp, a folder or a .jsonl file)")
    cfg = merge(EvalConfig, file_values, options)
    cfg.k = tuple(cfg.k)
    console = Console(stderr=True)
    quiet = as_json or not console.is_terminal
    result = _with_progress(console, quiet, lambda progress: run_eval(cfg, progress, check_references))
    r = result.results
    if as_json:
        click.echo(json.dumps(r, indent=1, default=str))
        return
    suite = r["suite"]
    refs = r["references"]
    if check_references:
        click.echo(f"references of {suite['name']} ({suite['split']}, {suite['tasks']} tasks): "
                   f"{refs['pass_rate']:.1%} pass, {refs['cpu_s']:.1f} CPU s")
        for f in refs["failures"]:
            click.echo(f"  FAIL {f['task_id']}: {f['status']}: {f['feedback'][:160]}")
        if refs["failures"]:
            raise SystemExit(1)
        return
    who = r["model"].get("model") or cfg.samples or cfg.predictions
    click.echo(f"{suite['name']} ({suite['split']}, {suite['tasks']} tasks, hash {suite['hash']}) · {who}")
    for name, m in r["metrics"].items():
        low, high = m["ci95"]
        click.echo(f"  {name}: {100 * m['value']:.2f}%  (95% CI {100 * low:.1f}–{100 * high:.1f})")
    click.echo("  statuses: " + ", ".join(f"{k} {v}" for k, v in r["status_histogram"].items() if v))
    click.echo(f"  references pass: {refs['pass_rate']:.1%}" + ("  (override recorded)" if refs["override"] else ""))
    click.echo(f"  results: {result.out_dir}  (store: {cfg.store})")


def _with_progress(console, quiet: bool, run):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        handles: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in handles:
                handles[stage] = bar.add_task(stage, total=total)
            bar.update(handles[stage], completed=done, total=total)

        return run(progress)


@click.command()
@click.option("--store", default="results/results.duckdb", show_default=True, help="Results store (DuckDB file).")
@click.option("--suite", help="Only this suite.")
@click.option("--markdown", is_flag=True, help="Print markdown tables instead of the terminal table.")
@click.option("--html", "html_dir", help="Write a static page (index.html, no network needed) to this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def leaderboard(store, suite, markdown, html_dir, as_json) -> None:
    """Show the results store as leaderboard tables: terminal, markdown, JSON or a static HTML page."""
    from codelutra_data.benchmarks import leaderboard as board
    from codelutra_data.benchmarks.store import read_rows

    rows = read_rows(store, suite)
    if not rows:
        raise UserError(f"no results{' for suite ' + repr(suite) if suite else ''} in {store}")
    if html_dir:
        path = board.render_html(rows, html_dir)
        click.echo(f"wrote {path}")
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
    elif markdown:
        click.echo(board.render_markdown(rows))
    elif not html_dir:
        board.render_terminal(rows)
