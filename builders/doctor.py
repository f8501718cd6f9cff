"""`doctor`: can this machine run model-written code safely, and do a task source's references pass?"""

from __future__ import annotations

import dataclasses
import json

import click

from codelutra_data.builders.tasks.adapters import TaskFormatSettings
from codelutra_data.config import Settings, group, merge, setting, settings
from codelutra_data.flags import json_option, options
from codelutra_data.errors import UserError
from codelutra_data.sandboxes.settings import SandboxSettings


@settings
class DoctorConfig(Settings):
    """What `doctor` checks: the sandbox as a build would run it and, optionally, a task source's references."""

    tasks: str | None = setting(None, "Also run every reference solution of this task source (name, folder or "
                                ".jsonl).", path="input")
    split: str = setting("all", "Split of the task source to check.")
    limit: int = setting(0, "Check only the first N tasks; 0 = all.", at_least=0)
    sandbox: SandboxSettings = group(SandboxSettings)
    task_format: TaskFormatSettings = group(TaskFormatSettings)
    min_pass_rate: float = setting(1.0, "Exit non-zero when fewer references pass.", at_least=0, at_most=1)


@click.command()
@options(DoctorConfig)
@json_option("the report")
def doctor(as_json, **flags) -> None:
    """Report sandbox isolation, limits and CPU; with --tasks, run every reference solution."""
    from codelutra_data.machine import machine
    from codelutra_data.models.engine import EngineSettings
    from codelutra_data.models.registry import BACKENDS, backend_report
    from codelutra_data.sandboxes.isolation import detect
    from codelutra_data.sandboxes.settings import limits_for

    cfg = merge(DoctorConfig, {}, flags)
    cfg.validate()
    tasks = _load(cfg) if cfg.tasks else []  # a bad source is one line, before the report
    sandbox = cfg.sandbox
    status = detect()
    here = machine()
    report = {
        "platform": here["platform"], "python": here["python"], "cpu": here["cpu"],
        "isolation": {"kind": "bwrap", "available": status.available, "detail": status.detail,
                      "bwrap": status.bwrap, "version": status.version},
        "limits": {domain: dataclasses.asdict(limits_for(domain, sandbox)) for domain in ("python", "sql")},
    }
    report["backends"] = backend_report()
    for row in report["backends"]:  # what --batch-size auto means for each, with default engine settings
        if row["usable"]:
            size, why = BACKENDS[row["name"]].preferred_batch(EngineSettings(backend=row["name"]))
            row.update(batch_size=size, batch_size_why=why)
    ok = status.available or sandbox.isolation == "none"
    if not as_json:
        mark = "ok" if status.available else "NOT AVAILABLE"
        click.echo(f"platform:  {report['platform']}, Python {report['python']}")
        click.echo(f"cpu:       {report['cpu']}")
        click.echo(f"isolation: bubblewrap {mark} ({status.version or 'not found'}): {status.detail}")
        click.echo("limits:    python " + ", ".join(f"{k}={v}" for k, v in report["limits"]["python"].items()))
        click.echo("           sql " + ", ".join(f"{k}={v}" for k, v in report["limits"]["sql"].items()))
        for row in report["backends"]:
            extra = (f"; --batch-size auto: {row['batch_size']}" + (" (what --backend auto picks here)" if row["auto"] else "")
                     if row["usable"] else "")
            click.echo(f"backend:   {row['name']} {'ok' if row['usable'] else 'NOT USABLE'}: {row['detail']}{extra}")
    if tasks and ok:
        report["references"] = _check(cfg.tasks, cfg.split, tasks, sandbox, as_json)
        ok = report["references"]["pass_rate"] >= cfg.min_pass_rate
    if as_json:
        click.echo(json.dumps(report, indent=1))
    if not ok:
        raise SystemExit(1)


def _load(cfg: DoctorConfig) -> list:
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks(cfg.tasks, cfg.split, cfg.limit or None, cfg.task_format)
    domains = {t.domain for t in tasks}
    if len(domains) != 1:
        raise UserError(f"{cfg.tasks!r} mixes domains {sorted(domains)}")
    return tasks


def _check(source: str, split: str, tasks: list, sandbox: SandboxSettings, quiet: bool) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from codelutra_data.builders.executors import LocalExecutor
    from codelutra_data.builders.pipeline import check_references

    with Progress(TextColumn("[bold]references"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=quiet, transient=True) as bar:
        handle = bar.add_task("refs", total=len(tasks))
        with LocalExecutor(sandbox) as executor:
            results = check_references(executor, tasks, progress=lambda _e: bar.advance(handle))
            sandbox_name = executor.sandbox_info(tasks[0].domain)[0]
    failures = [{"task_id": t.task_id, "status": e.status, "feedback": e.feedback, "error_lines": e.error_lines}
                for t, e in zip(tasks, results) if e is not None and e.status != "passed"]
    ran = [e for e in results if e is not None]
    passed = len(ran) - len(failures)
    info = {"source": source, "split": split, "tasks": len(tasks), "passed": passed,
            "pass_rate": passed / len(ran) if ran else 1.0, "sandbox": sandbox_name,
            "seconds": round(sum(e.duration_s for e in ran), 2),
            "cpu_seconds": round(sum(e.cpu_s for e in ran), 2), "failures": failures,
            "without_reference": len(tasks) - len(ran)}
    if not quiet:
        unchecked = f"; {info['without_reference']} have no reference to check" if info["without_reference"] else ""
        click.echo(f"references of {source} ({split}): {passed}/{len(ran)} pass ({info['pass_rate']:.1%}) "
                   f"in sandbox {sandbox_name}{unchecked}")
        for f in failures:
            click.echo(f"  FAIL {f['task_id']}: {f['status']}: {f['feedback'][:200]}")
    return info
