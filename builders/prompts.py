"""Versioned prompt templates. A template's id and hash go into every Sample, so a change is visible."""

from __future__ import annotations

from codelutra_data.records import Message, content_hash

TEMPLATES: dict[str, dict[str, str]] = {
    "sql-v1": {
        "system": "You are an expert SQL assistant. You write a single correct {dialect} query that answers "
                  "the user's question over the given database. Reply with the query in one ```sql code block.",
        "user": "Database schema:\n{schema}\n\nQuestion: {question}{hint}",
    },
    "python-v1": {
        "system": "You are an expert Python programmer. Reply with the complete, self-contained solution "
                  "(imports and the full function definition) in one ```python code block.",
        "user": "Complete the following Python function.\n\n```python\n{code}```",
    },
    "mbpp-v1": {
        "system": "You are an expert Python programmer. Reply with the complete solution in one ```python "
                  "code block.",
        "user": "{text}\nYour code should pass these tests:\n\n{tests}",
    },
    # LiveCodeBench's code-generation prompt (lcb_runner's generic chat format): stdin programs and LeetCode methods
    "lcb-stdin-v1": {
        "system": "You are an expert Python programmer. You will be given a question (problem specification) and "
                  "will generate a correct Python program that matches the specification and passes all tests.",
        "user": "### Question:\n{question}\n\n### Format: Read the inputs from stdin, solve the problem and write "
                "the answer to stdout (do not directly test on the sample inputs). Enclose your code within "
                "delimiters as follows.\n```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided "
                "format with backticks)\n",
    },
    "lcb-call-v1": {
        "system": "You are an expert Python programmer. You will be given a question (problem specification) and "
                  "will generate a correct Python program that matches the specification and passes all tests.",
        "user": "### Question:\n{question}\n\n### Format: You will use the following starter code to write the "
                "solution to the problem and enclose your code within delimiters.\n```python\n{starter}\n```"
                "\n\n### Answer: (use the provided format with backticks)\n",
    },
    # BigCodeBench's chat prompts (its instruction prefix) for its complete and instruct splits
    "bcb-complete-v1": {
        "system": "You are an expert Python programmer.",
        "user": "Please provide a self-contained Python script that solves the following problem in a markdown "
                "code block:\n```\n{code}\n```",
    },
    "bcb-instruct-v1": {
        "system": "You are an expert Python programmer.",
        "user": "Please provide a self-contained Python script that solves the following problem in a markdown "
                "code block:\n{text}",
    },
    "ds1000-v1": {
        "system": "You are an expert Python data scientist. Reply with only the code that goes between "
                  "BEGIN SOLUTION and END SOLUTION, in one ```python code block.",
        "user": "{text}",
    },
}
DEFAULT_SQL_TEMPLATE = "sql-v1"


def template_hash(name: str) -> str:
    return content_hash(name, TEMPLATES[name])


def sql_prompt(question: str, schema: str, dialect: str, hint: str = "",
               template: str = DEFAULT_SQL_TEMPLATE) -> list[Message]:
    """Chat messages asking for one query; `hint` carries BIRD-style evidence when a source has it."""
    t = TEMPLATES[template]
    extra = f"\nHint: {hint}" if hint else ""
    return [
        {"role": "system", "content": t["system"].format(dialect=dialect)},
        {"role": "user", "content": t["user"].format(schema=schema, question=question, hint=extra)},
    ]


def python_prompt(template: str, **fields: str) -> list[Message]:
    """Chat messages for a Python task from one of the python templates."""
    t = TEMPLATES[template]
    return [{"role": "system", "content": t["system"]}, {"role": "user", "content": t["user"].format(**fields)}]
