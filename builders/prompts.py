"""Versioned prompt templates. A template's id and hash go into every Sample, so a change is visible."""

from __future__ import annotations

from codelutra_data.records import Message, content_hash

TEMPLATES: dict[str, dict[str, str]] = {
    "sql-v1": {
        "system": "You are an expert SQL assistant. You write a single correct {dialect} query that answers "
                  "the user's question over the given database. Reply with the query in one ```sql code block.",
        "user": "Database schema:\n{schema}\n\nQuestion: {question}{hint}",
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
