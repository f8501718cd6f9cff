"""`doctor`: can this machine run model-written code safely, and do a task source's references pass?"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys

import click

from codelutra_data.errors import UserError


@click.command()
@click.option("--tasks", "source", help="Also run every reference solution of this task source (name, folder or .jsonl).")
@click.option("--split", default="all", show_default=True, help="Split of the task source to check.")
@click.option("--limit", type=int, default=0, help="Check only the first N tasks; 0 = all.")
@click.option("--isolation", type=click.Choice(["bwrap", "none"]), default="bwrap", show_default=True)
@click.option("--cpu-time", "--timeout", "cpu_time_s", type=float, default=5.0, show_default=True,
              help="Per-program CPU time limit (s).")
@click.option("--wall-time", "wall_time_s", type=float, default=30.0, show_default=True,
              help="Wall-clock backstop per program (s).")
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--min-pass-rate", type=float, default=1.0, show_default=True,
              help="Exit non-zero when fewer references pass.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(source, split, limit, isolation, cpu_time_s, wall_time_s, workers, min_pass_rate, as_json) -> None:
    """Report sandbox isolation, limits and CPU; with --tasks, run every reference solution."""
    from codelutra_data.builders.build import cpu_name
    from codelutra_data.sandboxes.isolation import detect
    from codelutra_data.sandboxes.python import PythonLimits
    from codelutra_data.sandboxes.sql import SqlLimits

    status = detect()
    report = {
        "platform": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": sys.version.split()[0], "cpu": cpu_name(),
        "isolation": {"kind": "bwrap", "available": status.available, "detail": status.detail,
                      "bwrap": status.bwrap, "version": status.version},
        "limits": {"python": dataclasses.asdict(PythonLimits(cpu_time_s=cpu_time_s, wall_time_s=wall_time_s)),
                   "sql": dataclasses.asdict(SqlLimits(cpu_time_s=cpu_time_s, wall_time_s=wall_time_s))},
    }
    from codelutra_data.models.base import backend_report

    report["backends"] = backend_report()
    ok = status.available or isolation == "none"
    if not as_json:
        mark = "ok" if status.available else "NOT AVAILABLE"
        click.echo(f"platform:  {report['platform']}, Python {report['python']}")
        click.echo(f"cpu:       {report['cpu']}")
        click.echo(f"isolation: bubblewrap {mark} ({status.version or 'not found'}): {status.detail}")
        click.echo("limits:    python " + ", ".join(f"{k}={v}" for k, v in report["limits"]["python"].items()))
        click.echo("           sql " + ", ".join(f"{k}={v}" for k, v in report["limits"]["sql"].items()))
        for row in report["backends"]:
            click.echo(f"backend:   {row['name']} {'ok' if row['usable'] else 'NOT USABLE'}: {row['detail']}")
    if source and ok:
        report["references"] = _check(source, split, limit, isolation, cpu_time_s, wall_time_s, workers, as_json)
        ok = report["references"]["pass_rate"] >= min_pass_rate
    if as_json:
        click.echo(json.dumps(report, indent=1))
    if not ok:
        raise SystemExit(1)


def _check(source: str, split: str, limit: int, isolation: str, cpu_time_s: float, wall_time_s: float,
           workers: int, quiet: bool) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from codelutra_data.builders.execute import ExecOptions, Executor, check_references
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks(source, split, limit or None)
    domains = {t.domain for t in tasks}
    if len(domains) != 1:
        raise UserError(f"{source!r} mixes domains {sorted(domains)}")
    with Progress(TextColumn("[bold]references"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=quiet, transient=True) as bar:
        handle = bar.add_task("refs", total=len(tasks))
        with Executor(ExecOptions(cpu_time_s=cpu_time_s, wall_time_s=wall_time_s, workers=workers,
                                  isolation=isolation)) as executor:
            results = check_references(executor, tasks, progress=lambda _e: bar.advance(handle))
            sandbox = executor.sandbox_info(tasks[0].domain)[0]
    failures = [{"task_id": t.task_id, "status": e.status, "feedback": e.feedback, "error_lines": e.error_lines}
                for t, e in zip(tasks, results) if e.status != "passed"]
    passed = len(tasks) - len(failures)
    info = {"source": source, "split": split, "tasks": len(tasks), "passed": passed,
            "pass_rate": passed / len(tasks), "sandbox": sandbox,
            "seconds": round(sum(e.duration_s for e in results), 2),
            "cpu_seconds": round(sum(e.cpu_s for e in results), 2), "failures": failures}
    if not quiet:
        click.echo(f"references of {source} ({split}): {passed}/{len(tasks)} pass ({info['pass_rate']:.1%}) "
                   f"in sandbox {sandbox}")
        for f in failures:
            click.echo(f"  FAIL {f['task_id']}: {f['status']}: {f['feedback'][:200]}")
    return info
