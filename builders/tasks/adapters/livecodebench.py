"""LiveCodeBench's format (livecodebench/code_generation_lite), graded as lcb_runner grades.

A problem is functional (LeetCode: `metadata.func_name`, a `class Solution` method called on JSON-decoded
arguments, its result compared with `==`, a tuple taken as a list) or reads stdin (AtCoder, Codeforces: the
program runs once per test with that test's input, its stdout compared line by line, stripped, each line equal as
text or as a list of `Decimal` tokens). The mode follows `func_name`, as in lcb_runner, not the tests' `testtype`.
Programs are prepared as lcb_runner prepares them (its star imports first; a stdin program's last `if __name__ ==
'__main__':` unwrapped, its top-level imports run once and everything else wrapped in one function), so verdicts
agree with its own down to its quirks. Differences, on purpose: each test's 6-second limit is CPU time (lcb_runner:
wall-clock `alarm`), so a busy machine does not turn a correct answer into a timeout; and the program runs in our
sandbox rather than with `os`/`shutil` functions disabled.

The public tests are JSON; the private ones are base64 of zlib of a pickled string holding JSON. They are decoded
with an unpickler that refuses every global (a pickle is a program), on the host only to count them: the encoded
text travels with the job and is decoded inside the sandbox. The dataset ships no reference solutions, so its
tasks have none (`reference` is empty) and the reference check skips them."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import zlib

from codelutra_data.builders.tasks.adapters.base import Adapter, Row, SourceContext
from codelutra_data.errors import UserError
from codelutra_data.records import Task
from codelutra_data.sandboxes.inside.harnesses.livecodebench import decode_cases

REPO = "livecodebench/code_generation_lite"
# The data files of each release, as the dataset's loading script names them (datasets >= 4 no longer runs
# loading scripts, so the files are read directly): release_vN holds everything up to vN, vN only what vN added.
FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
TEST_CPU_S = 6.0  # lcb_runner's --timeout default, per test (and for loading the program)


def release_files(config: str | None) -> list[str]:
    """The files a release tag names: release_v1..release_v6 and release_latest (cumulative), v1..v6 (one
    release's new problems) and vA_vB (releases A to B)."""
    name = config or "release_latest"
    count = len(FILES)
    if name == "release_latest":
        return list(FILES)
    try:
        if name.startswith("release_v"):
            last = int(name[len("release_v"):])
            if 1 <= last <= count:
                return list(FILES[:last])
        elif name.startswith("v") and "_v" in name:
            first, last = (int(p) for p in name[1:].split("_v"))
            if 1 <= first <= last <= count:
                return list(FILES[first - 1:last])
        elif name.startswith("v"):
            one = int(name[1:])
            if 1 <= one <= count:
                return [FILES[one - 1]]
    except ValueError:
        pass
    raise UserError(f"hf:{REPO}: unknown release {name!r} (release_v1..release_v{count}, release_latest, "
                    f"v1..v{count}, or vA_vB)")




class LiveCodeBench(Adapter):
    name = "livecodebench"
    columns = ("question_id", "question_content", "public_test_cases", "private_test_cases", "metadata",
               "starter_code", "contest_date")
    key = ("question_content", "public_test_cases", "private_test_cases")
    description = "LiveCodeBench: dated contest problems, functional (LeetCode) or stdin/stdout, graded by its rules"
    script_repos = {REPO: release_files}

    def tasks(self, rows: list[Row], source: SourceContext) -> list[Task]:
        return [_task(r, source) for r in rows]


def _text(data: dict, name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise UserError(f"{where}: field {name!r} must be text, got {type(value).__name__}")
    return value


def contest_date(value: str, where: str) -> str:
    try:
        return dt.datetime.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise UserError(f"{where}: contest_date {value!r} is not an ISO date") from None


def _task(row: Row, source: SourceContext) -> Task:
    from codelutra_data.builders.prompts import python_prompt

    data, where = row.data, row.where
    for name in ("question_id", "question_content", "public_test_cases", "private_test_cases"):
        _text(data, name, where)
    meta = data.get("metadata") or "{}"
    try:
        meta = json.loads(meta) if isinstance(meta, str) else meta
        public = decode_cases(data["public_test_cases"])
        private = decode_cases(data["private_test_cases"]) if data["private_test_cases"] else []
    except (ValueError, TypeError, zlib.error, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise UserError(f"{where}: test cases or metadata cannot be read ({type(exc).__name__}: "
                        f"{str(exc)[:100]})") from None
    cases = public + private
    if not isinstance(meta, dict) or not isinstance(cases, list) or not cases or not all(
            isinstance(c, dict) and isinstance(c.get("input"), str) and isinstance(c.get("output"), str)
            for c in cases):
        raise UserError(f"{where}: a LiveCodeBench problem needs test cases with text input and output")
    fn_name = meta.get("func_name") or None
    starter = data.get("starter_code") or ""
    question = data["question_content"]
    if fn_name:
        prompt = python_prompt("lcb-call-v1", question=question, starter=starter)
    else:
        prompt = python_prompt("lcb-stdin-v1", question=question)
    steps = [["_lcb_load()", False]] + [[f"_lcb_test({k})", True] for k in range(len(cases))]
    context = {"entry_point": None, "setup": "", "test_setup": "", "tests": steps, "mode": "function",
               "harness": "livecodebench", "harness_args": {"fn_name": fn_name, "public": data["public_test_cases"]},
               "guard": "lcb", "io": "quiet", "fail_fast": True, "step_cpu_s": [TEST_CPU_S] * len(steps),
               "job_cpu_s": round((TEST_CPU_S + 1) * len(cases) + 5, 2),
               "test_data": data["private_test_cases"] if private else ""}
    metadata = {"template": prompt_template(fn_name), "problem": question, "platform": data.get("platform", ""),
                "difficulty": data.get("difficulty", ""), "title": data.get("question_title", ""),
                "starter_code": starter, "tests": len(cases)}
    if data.get("contest_date"):
        metadata["contest_date"] = contest_date(data["contest_date"], where)
    return Task(task_id=data["question_id"], source=source.name, domain="python", prompt=prompt, context=context,
                reference="", split=data.get("split") or row.split or "test", metadata=metadata)


def prompt_template(fn_name: str | None) -> str:
    return "lcb-call-v1" if fn_name else "lcb-stdin-v1"
