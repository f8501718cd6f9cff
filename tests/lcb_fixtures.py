"""LiveCodeBench problems in the schema of livecodebench/code_generation_lite (its loading script's features:
every column a string; public tests JSON; private tests base64 of zlib of a pickled JSON string; metadata JSON with
`func_name` for LeetCode problems), and programs for them: right ones in the styles contest programs are written
in, and ones that break the way model answers break."""

from __future__ import annotations

import base64
import json
import pickle
import zlib


def encode_private(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("ascii")


def _cases(pairs: list[tuple[str, str]], kind: str) -> list[dict]:
    return [{"input": i, "output": o, "testtype": kind} for i, o in pairs]


def row(question_id: str, title: str, content: str, platform: str, date: str, public: list[tuple[str, str]],
        private: list[tuple[str, str]], func_name: str | None = None, starter: str = "",
        difficulty: str = "easy") -> dict:
    kind = "functional" if func_name else "stdin"
    return {"question_title": title, "question_content": content, "platform": platform, "question_id": question_id,
            "contest_id": question_id.split("_")[0], "contest_date": date, "starter_code": starter,
            "difficulty": difficulty, "public_test_cases": json.dumps(_cases(public, kind)),
            "private_test_cases": encode_private(_cases(private, kind)),
            "metadata": json.dumps({"func_name": func_name} if func_name else {})}


def problems() -> list[dict]:
    """Four problems over two dates: two read stdin (AtCoder-style), two are LeetCode methods."""
    return [
        row("abc001_a", "Sum", "Given integers A and B, print A+B.", "atcoder", "2024-08-03T00:00:00",
            [("1 2\n", "3\n"), ("10 -4\n", "6\n")], [("0 0\n", "0\n"), ("123456789 987654321\n", "1111111110\n"),
                                                     ("-5 -6\n", "-11\n")]),
        row("abc002_b", "Halves", "Given N then N integers, print each halved, one per line.", "atcoder",
            "2025-02-08T00:00:00", [("2\n3\n4\n", "1.5\n2\n")], [("1\n7\n", "3.5\n"), ("3\n1\n2\n9\n", "0.5\n1\n4.5\n")]),
        row("2001", "pair-sum", "Return the indices of the two numbers that add up to target.", "leetcode",
            "2024-11-16T00:00:00", [("[2, 7, 11, 15]\n9", "[0, 1]")], [("[3, 2, 4]\n6", "[1, 2]"), ("[3, 3]\n6", "[0, 1]")],
            func_name="pairSum", starter="class Solution:\n    def pairSum(self, nums: List[int], target: int) -> List[int]:\n        "),
        row("2002", "min-max", "Return the smallest and the largest number.", "leetcode", "2025-03-01T00:00:00",
            [("[4, 1, 9]", "[1, 9]")], [("[5]", "[5, 5]"), ("[-1, -8, 3, 0]", "[-8, 3]")], func_name="minMax",
            starter="class Solution:\n    def minMax(self, nums: List[int]) -> List[int]:\n        "),
    ]


PROGRAMS = {
    "abc001_a": [
        "a, b = map(int, input().split())\nprint(a + b)",
        "import sys\n\ndef main():\n    a, b = map(int, sys.stdin.read().split())\n    print(a + b)\n\n"
        "if __name__ == '__main__':\n    main()",
        "import sys\ninput = sys.stdin.readline\nA, B = map(int, input().split())\nsys.stdout.write(str(A + B) + '\\n')",
        "a, b = map(int, input().split())\nprint(a - b)",  # wrong
        "a, b = map(int, input().split())\nprint(a + b, end=' ')\nprint()",  # trailing space: stripped, right
        "a, b = map(int, input().split())\nprint(a + b)\nprint('done')",  # an extra line: wrong
        "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)",  # lcb_runner's stdin
        # cannot be iterated: wrong there, and here
        # lcb_runner patches readline on the stdin that was in place (lines without newlines) and then replaces
        # sys.stdin (a readline with newlines): `from sys import stdin` holds the first, sys.stdin is the second
        "from sys import stdin\na, b = map(int, stdin.readline().split())\nprint(a + b)",  # right
        "import sys\na, b = map(int, sys.stdin.readline()[:-1].split())\nprint(a + b)",  # right
        "from sys import stdin\na, b = map(int, stdin.readline()[:-1].split())\nprint(a + b)",  # wrong: cuts a digit
        "a, b = map(int, input().split())\nwhile a + b != 1111111110:\n    print(a + b)\n    break\nelse:\n"
        "    while True:\n        pass",  # loops on one private test: a timeout
        "a, b = map(int, input().split())\nprint([a, b][2])",  # raises
        "a, b = map(int, input().split())\nprint(a + b)\nexit(0)",  # exit() after printing: right
        "def f(:\n    pass",  # does not parse
        # what lcb_runner does to the program's process and text
        "a, b = map(int, input().split())\nif a == 0:\n    print(0)\n    return\nprint(a + b)",  # top-level return: fine
        "a, b = map(int, input().split())\nprint(a + b)\nquit()",  # quit is None there: a TypeError, fails
        "import resource\na, b = map(int, input().split())\nprint(a + b)",  # blocked: fails
        "import os\nos.getcwd()\na, b = map(int, input().split())\nprint(a + b)",  # disabled: fails
        "# no class Solution here\na, b = map(int, input().split())\nprint(a + b)",  # a comment: rewritten away
        "class Solution:\n    pass\na, b = map(int, input().split())\nprint(a + b)",  # the text rule: fails
        "import sys\nsys.stderr.write('x' * 1100000)\na, b = map(int, input().split())\nprint(a + b)",  # noisy: fine
    ],
    "abc002_b": [
        "n = int(input())\nfor _ in range(n):\n    x = int(input())\n    print(x / 2 if x % 2 else x // 2)",
        "n = int(input())\nfor _ in range(n):\n    print(int(input()) / 2)",  # 2.0 for 2: equal as Decimal, right
        "n = int(input())\nfor _ in range(n):\n    print(f'{int(input()) / 2:.2f}')",  # 1.50: equal as Decimal
        "n = int(input())\nprint(*[int(input()) / 2 for _ in range(n)])",  # one line: wrong
        "n = int(input())\nfor _ in range(n):\n    print(int(input()) / 2 + 1e-9)",  # no tolerance: wrong
        "n = int(input())\nfor _ in range(n):\n    print(int(input()) // 2)",  # floors: wrong
    ],
    "2001": [
        "class Solution:\n    def pairSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n"
        "        for i, x in enumerate(nums):\n            if target - x in seen:\n                return [seen[target - x], i]\n"
        "            seen[x] = i",
        "class Solution:\n    def pairSum(self, nums, target):\n        for i in range(len(nums)):\n"
        "            for j in range(i + 1, len(nums)):\n                if nums[i] + nums[j] == target:\n"
        "                    return (i, j)",  # a tuple counts as a list: right
        "class Solution:\n    def pairSum(self, nums, target):\n        return [0, 1]",  # wrong on a private test
        "class Solution:\n    def pairSum(self, nums, target):\n        return {0, 1}",  # a set: wrong
        "class Solution:\n    def pair_sum(self, nums, target):\n        return [0, 1]",  # wrong name
        "from __future__ import annotations\nclass Solution:\n    def pairSum(self, nums, target):\n"
        "        for i in range(len(nums)):\n            for j in range(i + 1, len(nums)):\n"
        "                if nums[i] + nums[j] == target:\n                    return [i, j]",  # the preamble makes it
        # a syntax error there, so here too
        "class Solution:\n    def pairSum(self, nums, target):\n        while True:\n            pass",  # loops
        "class Solution:\n    def pairSum(self, nums, target):\n        print('x' * 1100000)\n"
        "        return [i for i in range(len(nums)) for j in range(i) if nums[i] + nums[j] == target][:1] and "
        "[next(j for j in range(len(nums)) if nums[j] + nums[i] == target and j != i) for i in range(len(nums)) "
        "if any(nums[i] + nums[j] == target and j != i for j in range(len(nums)))][:2]",  # prints 1 MB: fine
        "import resource\nclass Solution:\n    def pairSum(self, nums, target):\n        return [0, 1]",  # blocked
    ],
    "2002": [
        "class Solution:\n    def minMax(self, nums: List[int]) -> List[int]:\n        return [min(nums), max(nums)]",
        "class Solution:\n    def minMax(self, nums):\n        return sorted(nums)[0], sorted(nums)[-1]",  # tuple
        "class Solution:\n    def minMax(self, nums):\n        return [min(nums), max(nums) * 1.0]",  # 9.0 == 9
        "class Solution:\n    def minMax(self, nums):\n        return [nums[0], nums[-1]]",  # wrong
        "class Solution:\n    def minMax(self, nums):\n        return [min(nums), max(nums)][5]",  # raises
    ],
}
