"""What a reviser is told about a failed attempt, and the chat that asks it for a fix.

Feedback is built from the Execution the sandbox returned (never from a traceback), bounded in size, and
versioned like the prompt templates: the version and a hash of these texts go into every trajectory, so a
change of wording is visible in the data. The revision prompt is a real multi-turn chat (task, attempt,
feedback, attempt, feedback, ...), the conversation a chat model would see in use.
"""

from __future__ import annotations

from codelutra_data.records import Execution, Message, Task, content_hash

FEEDBACK_VERSION = "feedback-v1"
MESSAGE_LIMIT = 1500  # characters of one feedback message
SCHEMA_LIMIT = 700  # characters of the table/column listing in SQL feedback

TEMPLATES: dict[str, dict[str, str]] = {
    "feedback-v1": {
        "sql:passed": "The query returns the correct result.",
        "sql:syntax_error": "The query has a syntax error: {error}",
        "sql:runtime_error": "The query failed with an error: {error}",
        "sql:wrong_answer": "The query ran, but its result is wrong: {difference}",
        "sql:timeout": "The query did not finish within the time limit of {timeout:g} s. Avoid cross joins, "
                       "repeated subqueries and unbounded recursion.",
        "sql:oom": "The query ran out of memory.",
        "sql:no_code": "The answer contained no SQL query.",
        "sql:sandbox_error": "The query could not be checked: {detail}",
        "python:passed": "The program passed every test.",
        "python:syntax_error": "The program does not compile: {error}",
        "python:runtime_error": "The program raised an error: {error}",
        "python:wrong_answer": "The program failed a test ({passed} of {total} tests passed).",
        "python:timeout": "The program did not finish within the time limit of {timeout:g} s. Look for an infinite "
                          "loop or a slow algorithm.",
        "python:oom": "The program ran out of memory (limit {memory} MiB).",
        "python:no_code": "The answer contained no Python code.",
        "python:sandbox_error": "The program could not be checked: {detail}",
        "line": "At line {number} of your {kind}: {text}",
        "test": "The failing test:\n{test}",
        "returned": "Your function returned: {value}",
        "schema": "The database has these tables and columns:\n{tables}",
        "repeat": "Your last answer repeated your attempt number {attempt}, which already failed. Write a "
                  "different {kind}.",
    },
}

REVISION_VERSION = "revise-v1"
REVISION_TEMPLATES: dict[str, dict[str, str]] = {
    "revise-v1": {
        "sql": "{feedback}\n\nFix the query. Reply with the complete corrected query in one ```sql code block.",
        "python": "{feedback}\n\nFix the program. Reply with the complete corrected program in one ```python "
                  "code block.",
    },
}
_NAME_ERRORS = ("no such column", "no such table", "no such function", "ambiguous column", "not found",
                "does not exist")


def feedback_id(version: str = FEEDBACK_VERSION) -> str:
    """`revise-vN+feedback-vM@hash` of the revision and feedback texts, recorded with every revision."""
    digest = content_hash(version, TEMPLATES[version], REVISION_TEMPLATES[REVISION_VERSION])
    return f"{REVISION_VERSION}+{version}@{digest}"


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _line_text(code: str, number: int) -> str | None:
    lines = code.splitlines()
    if 1 <= number <= len(lines) and lines[number - 1].strip():
        return _clip(lines[number - 1].strip(), 200)
    return None


def _schema_listing(task: Task, code: str) -> str:
    """Tables and their columns, the tables the query names first, bounded."""
    from codelutra_data.sandboxes.sql import table_columns

    try:
        tables = table_columns(task.context["engine"], task.context["db_path"])
    except Exception:  # noqa: BLE001 - the listing is a courtesy; the error message itself still goes out
        return ""
    lowered = code.lower()
    ordered = sorted(tables, key=lambda t: (t.lower() not in lowered, list(tables).index(t)))
    lines, size = [], 0
    for table in ordered:
        line = f"  {table}: {', '.join(tables[table])}"
        if size + len(line) > SCHEMA_LIMIT:
            rest = len(ordered) - len(lines)
            lines.append(f"  ... and {rest} more table{'s' if rest > 1 else ''}")
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def feedback_message(task: Task, code: str | None, execution: Execution, version: str = FEEDBACK_VERSION) -> str:
    """The feedback on one attempt: the status in words; for errors the exception or the engine's message
    and the offending line of the candidate's own code (Python: the failing test; SQL: the table and column
    names that exist); for wrong answers a short difference (SQL: shapes and differing rows; Python: the
    failing assert and the value returned)."""
    t = TEMPLATES[version]
    domain, status = task.domain, execution.status
    code = code or ""
    kind = "query" if domain == "sql" else "program"
    timeout = float(execution.limits.get("cpu_time_s", execution.limits.get("timeout_s", 0)) or 0)
    fields = {"error": _clip(execution.error or execution.feedback, 300), "timeout": timeout,
              "passed": execution.tests_passed, "total": execution.tests_total,
              "memory": execution.limits.get("memory_mb", "?"), "detail": _clip(execution.feedback, 300),
              "difference": _clip(execution.feedback.removeprefix("wrong result: "), 600)}
    parts = [t[f"{domain}:{status}"].format(**fields)]
    if status in ("syntax_error", "runtime_error", "oom") and execution.error_lines:
        text = _line_text(code, execution.error_lines[0])
        if text:
            parts.append(t["line"].format(number=execution.error_lines[0], kind=kind, text=text))
    if domain == "python" and status in ("wrong_answer", "runtime_error", "timeout", "oom") and execution.failing_test:
        parts.append(t["test"].format(test=_clip(execution.failing_test, 300)))
    if domain == "python" and status == "wrong_answer":
        if execution.returned:
            parts.append(t["returned"].format(value=execution.returned))
        if execution.error and execution.error != "AssertionError":
            parts.append(_clip(execution.error, 200))
    if domain == "sql" and status in ("runtime_error", "syntax_error") and any(
            marker in (execution.error or execution.feedback).lower() for marker in _NAME_ERRORS):
        listing = _schema_listing(task, code)
        if listing:
            parts.append(t["schema"].format(tables=listing))
    return _clip("\n".join(parts), MESSAGE_LIMIT)


def repeat_notice(domain: str, attempt: int, version: str = FEEDBACK_VERSION) -> str:
    """What the reviser is told after resubmitting an earlier program (`attempt` is 1-based)."""
    return TEMPLATES[version]["repeat"].format(kind="query" if domain == "sql" else "program", attempt=attempt)


def revision_turn(feedback: str, domain: str) -> str:
    """The user turn that follows a failed attempt: the feedback, then the request for a fix."""
    return REVISION_TEMPLATES[REVISION_VERSION][domain].format(feedback=feedback)


def conversation(task: Task, attempts: list[tuple[str, str]]) -> list[Message]:
    """The chat after the given (raw answer, feedback) attempts: task, answer, feedback + 'fix it', ..."""
    messages = list(task.prompt)
    for raw, feedback in attempts:
        messages.append({"role": "assistant", "content": raw})
        messages.append({"role": "user", "content": revision_turn(feedback, task.domain)})
    return messages


def attempts_shown(rounds: list[dict]) -> list[tuple[str, str]]:
    """The (raw answer, feedback) turns of the chat after these rounds. A resubmission is not shown again (a
    model that sees its answer twice tends to copy it a third time): its notice is added to the feedback on
    the last distinct attempt, so the reviser learns it repeated itself without the repeat in context."""
    shown = [[r["raw_output"], r["feedback"]] for r in rounds if r["resubmission_of"] < 0]
    if rounds and rounds[-1]["resubmission_of"] >= 0:
        shown[-1][1] = f"{shown[-1][1]}\n{rounds[-1]['feedback']}"
    return [(raw, feedback) for raw, feedback in shown]
