"""`eval` and `leaderboard`: thin click shells over benchmarks.runner and benchmarks.leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import click

from codelutra_data.benchmarks.runner import EvalConfig
from codelutra_data.benchmarks.store import DEFAULT_STORE
from codelutra_data.config import Settings, merge, setting, settings
from codelutra_data.errors import UserError
from codelutra_data.flags import config_option, json_option, options


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
@config_option("eval")
@options(EvalConfig)
@click.option("--k", "k_text", help="pass@k values to report, k <= n, e.g. 1,5,10. [1]")
@click.option("--check-references", is_flag=True, help="Only run the suite's reference solutions and report their pass rate.")
@json_option("the results object")
def eval_command(config_file, k_text, check_references, as_json, **flags) -> None:
    """Grade a model, samples or predictions on a suite; record the result in the results store."""
    from rich.console import Console

    from codelutra_data.benchmarks.runner import run_eval
    from codelutra_data.config import load_yaml

    file_values = load_yaml(config_file) if config_file else {}
    if "k" in file_values and isinstance(file_values["k"], (str, int)):
        file_values["k"] = _ks(str(file_values["k"]))
    flags["k"] = _ks(k_text)
    if not (flags.get("suite") or file_values.get("suite")):
        raise UserError("--suite is required (spider-dev, humaneval, mbpp, a folder or a .jsonl file)")
    cfg = merge(EvalConfig, file_values, flags)
    if isinstance(cfg.k, list):  # YAML's list; anything else is refused by validate()
        cfg.k = tuple(cfg.k)
    console = Console(stderr=True)
    quiet = as_json or not console.is_terminal
    result = _with_progress(console, quiet, lambda progress: run_eval(cfg, progress, check_references))
    r = result.results
    seen = r.get("contamination") or {}
    if seen.get("suite_tasks_overlapping"):
        click.echo(f"warning: {seen['suite_tasks_overlapping']} of the {r['suite']['tasks']} tasks graded here "
                   f"overlap the model's training release {seen['release']} (13-gram rule; e.g. "
                   f"{', '.join(seen['tasks'][:5])}): this score is not a held-out one", err=True)
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


@settings
class LeaderboardConfig(Settings):
    """Which results `leaderboard` shows, and how."""

    # not path="input": a missing store is the reader's to explain (`eval` makes it)
    store: str = setting(DEFAULT_STORE, "Results store (DuckDB file).")
    suite: str | None = setting(None, "Only this suite.")
    markdown: bool = setting(False, "Print markdown tables instead of the terminal table.")
    html: str | None = setting(None, "Write a static page (index.html, no network needed) to this folder.",
                               path="output-folder")
    push_to_hub: str | None = setting(None, "Publish the store as a Hub dataset ORG/NAME (configs results and "
                                      "details), merged with what is there, in one commit.", shown="no push")
    from_hub: str | None = setting(None, "Also show the results of a Hub leaderboard dataset ORG/NAME (pushed by "
                                   "--push-to-hub; the local store's copy of a result wins).", shown="local only")
    private: bool = setting(False, "With --push-to-hub: create the repository private.")


@click.command()
@options(LeaderboardConfig)
@json_option("the rows")
def leaderboard(as_json, **flags) -> None:
    """Show the results store as leaderboard tables: terminal, markdown, JSON or a static HTML page."""
    from codelutra_data.benchmarks import leaderboard as board
    from codelutra_data.benchmarks.store import read_rows

    from codelutra_data.benchmarks import leaderboard_hub

    cfg = merge(LeaderboardConfig, {}, flags)
    cfg.validate()
    if cfg.push_to_hub and cfg.from_hub:
        raise UserError("--push-to-hub publishes the local store; --from-hub reads a Hub board: use one at a time")
    remote = leaderboard_hub.pull(cfg.from_hub) if cfg.from_hub else []
    if cfg.suite:
        remote = [r for r in remote if r["suite"] == cfg.suite]
    local = read_rows(cfg.store, cfg.suite) if not (remote and not Path(cfg.store).exists()) else []
    rows = leaderboard_hub.combined(local, remote)
    if not rows:
        where = cfg.from_hub if cfg.from_hub else cfg.store
        raise UserError(f"no results{' for suite ' + repr(cfg.suite) if cfg.suite else ''} in {where}")
    if cfg.push_to_hub:
        pushed = leaderboard_hub.push(local, cfg.push_to_hub, private=cfg.private,
                                      log=lambda line: click.echo(line, err=True))
        if as_json:
            click.echo(json.dumps(pushed, indent=1))
        return
    if cfg.html:
        path = board.render_html(rows, cfg.html)
        click.echo(f"wrote {path}")
    if as_json:
        click.echo(json.dumps(rows, indent=1, default=str))
    elif cfg.markdown:
        click.echo(board.render_markdown(rows))
    elif not cfg.html:
        board.render_terminal(rows)
