"""Focal (IterPref) pairs made by hand from real tasks, until the trajectory builder makes them.

Each case is a real MBPP or Spider dev task with a fixed program (passes) and a failing version of the same
program (a realistic bug); the error spans come from the LCS-over-lines helper the trajectory builder will use.
`test_focal_pairs_are_real` runs both versions in the real sandboxes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from codelutra_data.builders.spans import error_spans
from codelutra_data.builders.tasks import load_tasks
from codelutra_data.records import Pair, content_hash

CASES = [
    ("mbpp", "mbpp/602",
     "def first_repeated_char(str1):\n  for index, c in enumerate(str1):\n    if str1[:index+1].count(c) > 1:\n"
     "      return c\n  return None",
     "def first_repeated_char(str1):\n  for index, c in enumerate(str1):\n    if str1[:index].count(c) > 1:\n"
     "      return c\n  return None"),
    ("mbpp", "mbpp/604",
     "def reverse_words(s):\n    words = s.split()\n    return ' '.join(reversed(words))",
     "def reverse_words(s):\n    words = s.split()\n    return ' '.join(words)"),
    ("mbpp", "mbpp/606",
     "import math\n\ndef radian_degree(degree):\n    radian = degree * (math.pi / 180)\n    return radian",
     "import math\n\ndef radian_degree(degree):\n    radian = degree * (math.pi / 360)\n    return radian"),
    ("mbpp", "mbpp/608",
     "def bell_Number(n):\n    bell = [[0 for i in range(n+1)] for j in range(n+1)]\n    bell[0][0] = 1\n"
     "    for i in range(1, n+1):\n        bell[i][0] = bell[i-1][i-1]\n        for j in range(1, i+1):\n"
     "            bell[i][j] = bell[i-1][j-1] + bell[i][j-1]\n    return bell[n][0]",
     "def bell_Number(n):\n    bell = [[0 for i in range(n+1)] for j in range(n+1)]\n    bell[0][0] = 1\n"
     "    for i in range(1, n+1):\n        bell[i][0] = bell[i-1][i]\n        for j in range(1, i):\n"
     "            bell[i][j] = bell[i-1][j-1] + bell[i][j-1]\n    return bell[n][0]"),
    ("mbpp", "mbpp/610",
     "def remove_kth_element(list1, L):\n    return list1[:L-1] + list1[L:]",
     "def remove_kth_element(list1, L):\n    return list1[:L] + list1[L:]"),
    ("spider-dev", "spider-dev-0004",
     "SELECT avg(age), min(age), max(age)\nFROM singer\nWHERE country = 'France';",
     "SELECT avg(age), min(age), max(age)\nFROM singer\nWHERE country = 'france';"),
    ("spider-dev", "spider-dev-0012",
     "SELECT song_name\nFROM singer\nWHERE age > (SELECT avg(age) FROM singer);",
     "SELECT song_name\nFROM singer\nWHERE age > (SELECT min(age) FROM singer);"),
]


def tasks_by_id() -> dict:
    out = {}
    for source in {c[0] for c in CASES}:
        for t in load_tasks(source, "all"):
            out[t.task_id] = t
    return out


def fenced(task, code: str) -> str:
    return f"```{'sql' if task.domain == 'sql' else 'python'}\n{code}\n```"


def focal_pairs(domain: str | None = None) -> list[Pair]:
    tasks = tasks_by_id()
    pairs = []
    for source, task_id, fixed, failing in CASES:
        task = tasks[task_id]
        if domain and task.domain != domain:
            continue
        chosen, rejected = fenced(task, fixed), fenced(task, failing)
        pairs.append(Pair(
            pair_id=content_hash("handmade", task_id), prompt=task.prompt,
            chosen=[{"role": "assistant", "content": chosen}], rejected=[{"role": "assistant", "content": rejected}],
            task_id=task_id, source=source, domain=task.domain, split="train", model="handmade", iteration=0,
            chosen_status="passed", rejected_status="wrong_answer", chosen_pass_rate=1.0, rejected_pass_rate=0.0,
            chosen_origin="sample", chosen_sample_id="", rejected_sample_id="",
            rejected_error_spans=error_spans(rejected, chosen), build_id="handmade"))
    return pairs


def write_pairs_release(root: Path, pairs: list[Pair], name: str = "focal-handmade", version: str = "0.1.0") -> Path:
    """A release folder in the layout `build` writes (pairs/<split>-<build>.parquet, build_config.yaml)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codelutra_data.builders.release import pairs_schema

    out = root / name / version
    (out / "pairs").mkdir(parents=True)
    table = pa.Table.from_pylist([p.to_dict() for p in pairs], schema=pairs_schema())
    pq.write_table(table, out / "pairs" / "train-handmade.parquet")
    (out / "build_config.yaml").write_text(yaml.safe_dump(
        {"build_id": "handmade", "config": {"name": name, "version": version}}))
    return out
