"""BigCodeBench problems in the schema of bigcode/bigcodebench (every column a string: task_id, complete_prompt,
instruct_prompt, canonical_solution, code_prompt, test with a unittest `TestCases`, entry_point, doc_struct, libs),
written in the style of its tasks, and programs for them: right ones, and ones that break the way model answers
break. One needs a library our environment lacks (wordninja), so it runs only under --sandbox-python."""

from __future__ import annotations

import json


def row(number: int, imports: str, signature: str, doc: str, body: str, test: str, libs: list[str]) -> dict:
    code_prompt = f"{imports}\n{signature}\n" if imports else f"{signature}\n"
    complete = f'{code_prompt}    """\n    {doc}\n    """\n'
    return {"task_id": f"BigCodeBench/{number}", "complete_prompt": complete,
            "instruct_prompt": f"{doc}\nYou should write self-contained code starting with:\n```\n{code_prompt}```",
            "canonical_solution": body, "code_prompt": code_prompt, "test": test, "entry_point": "task_func",
            "doc_struct": json.dumps({"description": [doc]}), "libs": repr(libs)}


COUNT_TEST = '''import unittest


class TestCases(unittest.TestCase):
    def test_empty(self):
        self.assertEqual(task_func(""), {})

    def test_case(self):
        self.assertEqual(task_func("The the THE cat"), {"the": 3, "cat": 1})

    def test_punctuation(self):
        self.assertEqual(task_func("cat, cat. dog!"), {"cat": 2, "dog": 1})
'''

DICE_TEST = '''import unittest
from unittest.mock import patch


class TestCases(unittest.TestCase):
    @patch(__name__ + ".randint", return_value=4)
    def test_patched(self, mock):
        self.assertEqual(task_func(30), [4] * 30)  # unpatched dice pass by chance once in 6**30

    def test_range(self):
        rolls = task_func(50)
        self.assertEqual(len(rolls), 50)
        self.assertTrue(all(1 <= r <= 6 for r in rolls))
'''

SPLIT_TEST = '''import unittest


class TestCases(unittest.TestCase):
    def test_words(self):
        self.assertEqual(task_func("thisisatest"), ["this", "is", "a", "test"])

    def test_empty(self):
        self.assertEqual(task_func(""), [])
'''


DOUBLE_TEST = '''import unittest


def _make(value, expected):
    def test(self):
        self.assertEqual(task_func(value), expected)
    return test


class TestCases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert task_func(0) == 0, "setUpClass"

    def test_many(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(task_func(i), 2 * i)

    test_assigned = _make(5, 10)
'''


def problems() -> list[dict]:
    return [
        row(11, "import re\nfrom collections import Counter", "def task_func(text):",
            "Count each word of the text, case-insensitively, ignoring punctuation. Returns: dict word -> count.",
            "    words = re.findall(r\"[a-z]+\", text.lower())\n    return dict(Counter(words))\n", COUNT_TEST,
            ["re", "collections"]),
        row(12, "from random import randint", "def task_func(n):",
            "Roll n six-sided dice with random.randint. Returns: list of n ints.",
            "    return [randint(1, 6) for _ in range(n)]\n", DICE_TEST, ["random"]),
        row(13, "import wordninja", "def task_func(text):",
            "Split run-together English text into words with wordninja. Returns: list of str.",
            "    return wordninja.split(text)\n", SPLIT_TEST, ["wordninja"]),
        row(14, "", "def task_func(x):", "Double x. Returns: a number.", "    return 2 * x\n", DOUBLE_TEST, []),
    ]


SKIPPED = {"BigCodeBench/14#7"}  # programs the official rule passes and ours fails on purpose (skipped tests)
PROGRAMS = {
    "BigCodeBench/11": [
        "import re\nfrom collections import Counter\ndef task_func(text):\n"
        "    return dict(Counter(re.findall(r'[a-z]+', text.lower())))",
        # no imports: the harness's calibration puts the prompt's imports first, so right
        "def task_func(text):\n    return dict(Counter(re.findall(r'[a-z]+', text.lower())))",
        "def task_func(text):\n    return dict(Counter(text.lower().split()))",  # punctuation kept: one test fails
        "def task_func(text):\n    print('x' * 100000)\n    return dict(Counter(re.findall(r'[a-z]+', text.lower())))",
        # printing is swallowed: right
        "def task_func(text):\n    input()\n    return {}",  # reads stdin: an error
        "def task_func(text:\n    pass",  # does not parse
        # the harness makes subprocess.run capture the child's output unless told otherwise: right
        "import subprocess\ndef task_func(text):\n    echoed = subprocess.run(['echo', '-n', text]).stdout.decode()\n"
        "    return dict(Counter(re.findall(r'[a-z]+', echoed.lower())))",
    ],
    "BigCodeBench/12": [
        "from random import randint\ndef task_func(n):\n    return [randint(1, 6) for _ in range(n)]",
        "import random\ndef task_func(n):\n    return [random.randint(1, 6) for _ in range(n)]",  # not patched: fails
        "def task_func(n):\n    return [randint(1, 6) for _ in range(n)]",  # the prompt's import: right
        "def task_func(n):\n    return [randint(1, 6) for _ in range(n - 1)]",  # one roll short
        "def task_func(n):\n    raise ValueError('no dice')",
    ],
    "BigCodeBench/14": [
        "def task_func(x):\n    return 2 * x",
        "    return 2 * x",  # the body alone: continues the calibration's task_func, right
        "from __future__ import annotations\ndef task_func(x):\n    return 2 * x",  # not first in the one text: fails
        "def task_func(x):\n    return 5 if x == 2 else 2 * x",  # fails a subTest
        "def task_func(x):\n    return 2 * x if x else 1",  # fails setUpClass
        "def task_func(x):\n    return 0 if x == 5 else 2 * x",  # fails a test made by assignment
        "def task_func(x):\n    try:\n        exit(1)\n    except Exception:\n        pass\n    return 2 * x",  # exit is None
        # skips the assigned test: the official rule passes it, ours does not (SKIPPED below)
        "import unittest\ndef task_func(x):\n    if x == 5:\n        raise unittest.SkipTest('no')\n    return 2 * x",
    ],
    "BigCodeBench/13": [
        "import wordninja\ndef task_func(text):\n    return wordninja.split(text)",
        "import wordninja\ndef task_func(text):\n    return wordninja.split(text) or ['']",  # wrong on ''
        "def task_func(text):\n    return text.split()",
    ],
}
