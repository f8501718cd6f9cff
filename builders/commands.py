"""CLI commands of the builders: `build` and `tasks`. Loaded lazily by the core's command group."""

from __future__ import annotations

import json
from collections import Counter

import click

from codelutra_data.builders.build_config import BuildConfig
from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.config import load
from codelutra_data.flags import config_option, json_option, options


@click.command()
@config_option("build")
@options(BuildConfig)
@click.option("--push-to-hub", "push_to_hub", metavar="NAMESPACE/NAME",
              help="After the build, push the release to this Hub dataset repo (one commit + tag v<version>). "
                   "Without --version, the version follows the newest of the Hub's tags and the local releases.")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo private if it does not exist.")
@json_option()
def build(config_file, as_json, push_to_hub, private, **flags) -> None:
    """Sample, execute and pair (or debug): build a versioned preference dataset."""
    from rich.console import Console

    from codelutra_data.builders.build import run_build

    cfg = load(BuildConfig, config_file, flags)
    console = Console(stderr=True)
    quiet = as_json or not console.is_terminal
    if push_to_hub:
        cfg = _prepare_push(cfg, push_to_hub, console, quiet)
    if cfg.mode == "trajectories":
        result = _with_round_progress(console, quiet, lambda progress, start: run_build(cfg, progress, start),
                                      cfg.trajectories_per_task)
    else:
        result = _with_task_progress(console, quiet, lambda progress, start: run_build(cfg, progress, start))
    stats = result.stats
    pushed = _push_built(result.release_dir, push_to_hub, private, console, quiet) if push_to_hub else None
    if as_json:
        click.echo(json.dumps({"release": str(result.release_dir), **stats,
                               **({"pushed": pushed} if pushed else {})}, indent=1))
        return
    print_summary(console, cfg, stats, result.release_dir)
    if pushed:
        console.print(f"pushed: {pushed['url']} at tag {pushed['tag']} (commit {pushed['commit'][:12]})", markup=False)


def _prepare_push(cfg, repo_id: str, console, quiet: bool):
    """Before a long build: the token may write, and the version is chosen against the Hub's tags."""
    import dataclasses

    from codelutra_data.builders import publish
    from codelutra_data.builders.release import local_versions

    cfg.validate()
    publish.check_repo_id(repo_id, "--push-to-hub")
    user = publish.check_can_push()
    if cfg.version or cfg.resume:
        return cfg
    version = publish.propose_version(repo_id, local_versions(cfg.release_name, cfg.runs_dir, cfg.releases_dir))
    if not quiet:
        console.print(f"pushing to {repo_id} as {user}: building version {version}", markup=False)
    return dataclasses.replace(cfg, version=version)


def _push_built(release_dir, repo_id: str, private: bool, console, quiet: bool) -> dict:
    from codelutra_data.builders import publish
    from codelutra_data.errors import UserError

    _quiet_hub_progress(quiet)
    try:
        result = publish.push(release_dir, repo_id, private=private,
                              log=(lambda m: None) if quiet else (lambda m: console.print(m, markup=False)))
    except UserError as exc:
        raise UserError(f"{exc} (the release is written at {release_dir}; push it with: codelutra-data push "
                        f"{release_dir} --repo {repo_id} --resume)") from None
    return {"repo": result.repo_id, "tag": result.tag, "commit": result.commit, "url": result.url}


def _quiet_hub_progress(quiet: bool) -> None:
    """huggingface_hub's upload bars help in a terminal; in logs and under --json they are noise."""
    if quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


@click.command()
@click.argument("release", type=click.Path())
@click.option("--repo", "repo_id", required=True, metavar="NAMESPACE/NAME", help="The Hub dataset repo.")
@click.option("--private", is_flag=True, help="Create the repo private if it does not exist.")
@click.option("--dry-run", is_flag=True, help="Print the operations; send nothing (no token needed).")
@click.option("--resume", is_flag=True, help="After a failed push: tag the release's commit if it was made.")
@json_option()
def push(release, repo_id, private, dry_run, resume, as_json) -> None:
    """Publish a release on the Hugging Face Hub: one commit with every file, then tag v<version>."""
    from rich.console import Console

    from codelutra_data.builders import publish
    from codelutra_data.builders.release import read_release

    console = Console(stderr=True)
    if dry_run:  # what a real push checks before it sends anything: the repo id, then the whole release
        publish.check_repo_id(repo_id)
        release_obj = read_release(release)
        lines = publish.plan_lines(release_obj, repo_id)
        if as_json:
            click.echo(json.dumps({"dry_run": True, "repo": repo_id, "tag": release_obj.tag,
                                   "commit_message": release_obj.commit_title, "operations": lines}, indent=1))
        else:
            for line in lines:
                click.echo(line)
        return
    _quiet_hub_progress(as_json or not console.is_terminal)
    result = publish.push(release, repo_id, private=private, resume=resume,
                          log=(lambda m: None) if as_json else (lambda m: console.print(m, markup=False)))
    if as_json:
        click.echo(json.dumps({"repo": result.repo_id, "tag": result.tag, "commit": result.commit, "url": result.url,
                               "created_repo": result.created_repo, "resumed": result.resumed,
                               "uploaded": result.uploaded, "deleted": result.deleted}, indent=1))
    else:
        click.echo(f"{result.url} at tag {result.tag} (commit {result.commit})")


def print_summary(console, cfg, stats: dict, release_dir) -> None:
    """What every build ends with: what was made, why tasks gave nothing, where the time went, what next."""
    console.print(f"[green]release written:[/green] {release_dir}")
    if cfg.mode == "trajectories":
        console.print(f"tasks {stats['tasks']}, trajectories {stats['trajectories']}, attempts {stats['samples']} "
                      f"({stats['resubmissions']} resubmissions), focal pairs {stats['focal_pairs']}, "
                      f"SFT conversations {stats['sft_conversations']}")
        console.print(f"solved: first try {stats['first_try_pass_rate']:.1%}, after debugging "
                      f"{stats['final_solve_rate']:.1%}; by round: "
                      + ", ".join(f"{r:.1%}" for r in stats["cumulative_solve_rate"]))
        console.print("without a pair: " + ", ".join(f"{k} {v}" for k, v in stats["trajectories_without_pairs"].items()))
        console.print("filtered: " + ", ".join(f"{k} {v}" for k, v in stats["filters"].items()))
        if not stats["focal_pairs"]:
            console.print("[yellow]no focal pairs were made:[/yellow] the focal_pairs config is empty (schema only)")
    else:
        console.print(f"tasks {stats['tasks']}, samples {stats['samples']} (pass rate {stats['pass_rate']:.1%}), "
                      f"pairs {stats['pairs']}")
        console.print("tasks without pairs: " + ", ".join(f"{k} {v}" for k, v in stats["tasks_without_pairs"].items()))
        if not stats["pairs"]:
            console.print("[yellow]no pairs were made:[/yellow] the pairs config is empty (schema only)")
    console.print("statuses: " + ", ".join(f"{k} {v}" for k, v in stats["status_histogram"].items()))
    console.print(f"reference solutions: {stats['reference_pass_rate']:.1%} pass"
                  + (f" ({len(stats['tasks_dropped_failing_reference'])} tasks left out)"
                     if stats["tasks_dropped_failing_reference"] else ""))
    t = stats["timing"]
    overlapped = t.get("overlapped_s", 0.0)
    console.print(f"time: {t['total_s']:.1f} s total = model load {t['model_load_s']:.1f} + generation "
                  f"{t['generation_s']:.1f} + execution {t['execution_s']:.1f} + bookkeeping {t['bookkeeping_s']:.1f}"
                  + (f" - {overlapped:.1f} overlapped" if overlapped else ""))
    g = stats.get("generation") or {}
    if g.get("tokens_per_s"):
        console.print(f"generation: {g['engine']}, {g['tokens_per_s']:.1f} tokens/s on {stats['threads']} thread(s) "
                      f"({g['completions_generated']} completions, {g['finished_by_length']} stopped by the token budget; "
                      f"calls of {g['batch_size']} sequences, overlap {'on' if g['overlap'] else 'off'})")
    for line in next_steps(cfg, stats):
        console.print(line, markup=False)


def next_steps(cfg, stats: dict) -> list[str]:
    """After a small build, say what a real one takes: every task, and the time it would need at this speed."""
    if not cfg.limit:
        return []
    try:
        from codelutra_data.builders.tasks import load_tasks

        available = len(load_tasks(cfg.tasks, cfg.split, None, cfg.task_format))
    except Exception:  # noqa: BLE001 - only advice; the build itself is done
        return []
    if available <= stats["tasks"]:
        return []
    per_task = stats["timing"]["total_s"] / max(1, stats["tasks"])
    hours = per_task * available / 3600
    return [f"this was {stats['tasks']} of {available} tasks; for a real dataset: codelutra-data build --tasks {cfg.tasks} "
            f"--limit 0 --name <name> --version 1.0.0 (about {hours:.1f} h here at this speed; on a GPU: "
            f"pip install 'codelutra-data[vllm]', then add --backend vllm --model <org/model>)"]


def _with_task_progress(console, quiet: bool, run):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    counts = Counter()
    made = Counter()
    with Progress(TextColumn("[bold]build"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"),
                  TextColumn("{task.fields[rate]} samples/s, {task.fields[exec_rate]} executions/s, "
                             "pass rate {task.fields[pass_rate]}"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=True) as bar:
        handle = bar.add_task("build", total=None, rate="-", exec_rate="-", pass_rate="-")

        def progress(n_tasks: int, new_samples: int, new_executions: int, statuses: list[str]) -> None:
            """Rates count this run's own work (across the cluster with --executor ray), not resumed records."""
            counts.update(statuses)
            made.update(samples=new_samples, executions=new_executions)
            elapsed = bar.tasks[0].elapsed or 1e-9
            total = sum(counts.values())
            bar.update(handle, advance=n_tasks, rate=f"{made['samples'] / elapsed:.2f}",
                       exec_rate=f"{made['executions'] / elapsed:.2f}",
                       pass_rate=f"{counts['passed'] / total:.1%}" if total else "-")

        def start(total: int) -> None:
            bar.update(handle, total=total)

        return run(progress, start)


def _with_round_progress(console, quiet: bool, run, per_task: int):
    """Round, open trajectories, solved so far and samples/s; the bar fills as trajectories close."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]build[/bold] round {task.fields[round]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("trajectories closed, {task.fields[open]} open, {task.fields[solved]} solved, "
                             "{task.fields[rate]} samples/s"),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=True) as bar:
        handle = bar.add_task("build", total=None, round=0, open="-", solved=0, rate="-")
        made = [0]

        def progress(event) -> None:
            made[0] += event.new_samples
            elapsed = bar.tasks[0].elapsed or 1e-9
            bar.update(handle, completed=event.trajectories - event.open, round=event.round, open=event.open,
                       solved=event.solved, rate=f"{made[0] / elapsed:.2f}")

        def start(total_tasks: int) -> None:
            bar.update(handle, total=total_tasks * per_task)

        return run(progress, start)


@click.group()
def tasks() -> None:
    """List and inspect task sources."""


@tasks.command("list")
@click.option("--json", "as_json", is_flag=True)
def tasks_list(as_json: bool) -> None:
    """Registered task sources, and the Hub datasets cached here (at which commit, named by which revisions)."""
    from codelutra_data.builders.tasks import hub, registered

    rows = [{"name": s.name, "domain": s.domain, "description": s.description, "license": s.license,
             **({"hub": s.hub} if s.hub else {})} for s in registered().values()]
    cached = hub.cached_sets() + hub.cached_files()
    if as_json:
        click.echo(json.dumps({"sources": rows, "cached": cached}, indent=1))
        return
    for r in rows:
        click.echo(f"{r['name']:<12} {r['domain']:<7} {r['description']}")
    click.echo("also: a Spider/BIRD-layout folder, a .jsonl file, or a Hub dataset hf:ORG/NAME[:CONFIG][@REVISION] "
               "in a format `--format` names: humaneval, mbpp, ds1000, livecodebench, python (prompt, tests, "
               "reference[, task_id, "
               "entry_point, setup, imports, split]) or sql (question, db, gold[, id, split])")
    if not cached:
        click.echo("cached Hub datasets: none (`codelutra-data tasks fetch hf:ORG/NAME` downloads one)")
        return
    click.echo("cached Hub datasets:")
    for c in cached:
        refs = f" ({', '.join(c['refs'])})" if c["refs"] else ""
        if c["config"].startswith("files: "):
            click.echo(f"  hf:{c['repo']}@{c['commit']}{refs}: {c['config']}")
        else:
            click.echo(f"  hf:{c['repo']}:{c['config']}@{c['commit']}{refs}")


@tasks.command("fetch")
@click.argument("sources", nargs=-1, required=True)
def tasks_fetch(sources: tuple[str, ...]) -> None:
    """Download registered suites (humaneval+, mbpp+, ds1000, livecodebench) or Hub task sets
    (hf:ORG/NAME[:CONFIG][@REVISION]) into the datasets cache, to run offline later."""
    from codelutra_data.builders.tasks import hub, registered
    from codelutra_data.errors import UserError

    known = registered()
    specs = []
    for source in sources:  # every name checked before anything is downloaded
        spec = known[source].hub if source in known else source
        if not hub.is_hub_spec(spec):
            fetchable = ", ".join(n for n, s in known.items() if s.hub)
            raise UserError(f"tasks fetch takes registered suites ({fetchable}) or Hub datasets "
                            f"(hf:ORG/NAME[:CONFIG][@REVISION]); {source!r} is neither (bundled sources need no "
                            f"download)")
        specs.append(hub.parse(spec))
    for spec in specs:
        if spec.folder:
            raise UserError(f"hf:{spec.folder} is a local folder: nothing to fetch")
    for source, spec in zip(sources, specs):
        files = hub.script_files(spec)
        if files is not None:  # a loading script's data files: downloaded, not read (LiveCodeBench: GBs)
            commit, _ = hub.resolve_commit(spec)
            paths = hub.download_files(spec, commit, files)
            size = sum(p.stat().st_size for p in paths) / 1e6
            click.echo(f"{source}: commit {commit} ({len(paths)} files, {size:.1f} MB) cached")
            continue
        data = hub.load(spec)
        rows = ", ".join(f"{name} {len(items)}" for name, items in data.splits.items())
        click.echo(f"{source}: commit {data.commit} ({rows} rows) cached")


@tasks.command("show")
@click.argument("source")
@options(TaskFormatSettings)
@click.option("--json", "as_json", is_flag=True)
def tasks_show(source: str, as_json: bool, **flags) -> None:
    """Counts per split (and per database for SQL) for SOURCE."""
    from codelutra_data.builders.tasks import bundled_summary, load_tasks, source_license

    fmt = load(TaskFormatSettings, None, flags)
    all_tasks = load_tasks(source, "all", None, fmt, unique=False)
    revision = all_tasks[0].metadata.get("revision", "")
    per_db: dict[str, Counter] = {}
    for t in all_tasks:
        per_db.setdefault(t.context.get("db_id", "-"), Counter())[t.split] += 1
    summary = bundled_summary(source)
    info = {"source": source, "domain": all_tasks[0].domain, "tasks": len(all_tasks),
            "splits": dict(Counter(t.split for t in all_tasks)), "license": source_license(source, all_tasks[0].source),
            **({"revision": revision} if revision else {}),
            "databases": {db: {"split": next(iter(c)), "tasks": sum(c.values())} for db, c in sorted(per_db.items())},
            "empty_gold_by_db": summary.get("empty_gold_by_db"),
            "zero_or_null_gold_by_db": summary.get("zero_or_null_gold_by_db")}
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"{source}: {info['tasks']} {info['domain']} tasks; splits: "
               + ", ".join(f"{k} {v}" for k, v in info["splits"].items()))
    click.echo(f"licence: {info['license']}" + (f"; commit {revision}" if revision else ""))
    if info["domain"] != "sql":
        return
    click.echo(f"{'database':<32} {'split':<6} tasks  empty-gold")
    empty = info["empty_gold_by_db"] or {}
    for db, d in info["databases"].items():
        click.echo(f"{db:<32} {d['split']:<6} {d['tasks']:>5}  {empty.get(db, 0) if summary else '-':>10}")
    if summary:
        click.echo(f"gold queries with an empty result: {sum(empty.values())}; with only zero/NULL values: "
                   f"{sum((info['zero_or_null_gold_by_db'] or {}).values())}")
