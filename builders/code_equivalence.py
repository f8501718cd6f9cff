"""When are two programs the same? Three levels, used to spot resubmissions and to filter focal pairs.

- `canonical`: a resubmission key. Python: the AST dump (formatting and comments do not count); SQL: the
  text with whitespace collapsed, keywords and names case-folded (string literals kept) and no trailing `;`.
- `same_structure`: IterPref's "same AST" filter. Python: equal ASTs; SQL: equal statements after sqlglot
  parses and re-renders them normalized (identifier case, quoting, keyword case, whitespace, comments).
- `cosmetic_equal`: differences that cannot change what the program computes. Python: equal after dropping
  docstrings and consistently renaming the names each function binds (arguments, locals); SQL: equal after
  renaming table aliases by order of appearance and dropping output-column aliases (result comparison
  ignores column names).
"""

from __future__ import annotations

import ast
import re
import warnings

_SQL_STRINGS = re.compile(r"('(?:[^']|'')*')")
_DIALECTS = {"sqlite": "sqlite", "duckdb": "duckdb"}


def _parse_python(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def canonical(code: str, domain: str) -> str:
    if domain == "python":
        tree = _parse_python(code)
        if tree is not None:
            return ast.dump(tree)
        return "\n".join(line.rstrip() for line in code.strip().splitlines())
    parts = _SQL_STRINGS.split(code.strip())
    text = "".join(p if i % 2 else re.sub(r"\s+", " ", p.lower()) for i, p in enumerate(parts))
    return text.strip().rstrip(";").strip()


def _parse_sql(code: str, engine: str):
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            statements = sqlglot.parse(code, read=_DIALECTS.get(engine, "sqlite"))
    except (SqlglotError, ValueError, RecursionError):
        return None
    statements = [s for s in statements if s is not None]
    return statements[0] if len(statements) == 1 else None


def _render_sql(expression, engine: str) -> str:
    return expression.sql(dialect=_DIALECTS.get(engine, "sqlite"), normalize=True, comments=False)


def same_structure(a: str, b: str, domain: str, engine: str = "sqlite") -> bool:
    if domain == "python":
        ta, tb = _parse_python(a), _parse_python(b)
        return ta is not None and tb is not None and ast.dump(ta) == ast.dump(tb)
    ea, eb = _parse_sql(a, engine), _parse_sql(b, engine)
    return ea is not None and eb is not None and _render_sql(ea, engine) == _render_sql(eb, engine)


class _Rename(ast.NodeTransformer):
    """Drop docstrings; rename each function's own bindings (arguments, assigned names) to v0, v1, ... in
    order of appearance. Module-level names, attributes and free names (builtins, imports) stay: a test
    calls the function by name, and `len` is not `sum`."""

    def __init__(self):
        self.counter = 0

    def _strip_docstring(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]

    def visit_Module(self, node):
        self._strip_docstring(node)
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node):
        self._strip_docstring(node)
        self.generic_visit(node)
        return node

    def _function(self, node):
        self._strip_docstring(node)
        bound: dict[str, str] = {}
        declared = {n for s in ast.walk(node) if isinstance(s, (ast.Global, ast.Nonlocal)) for n in s.names}

        def bind(name: str) -> str:
            if name in declared:
                return name
            if name not in bound:
                bound[name] = f"v{self.counter}"
                self.counter += 1
            return bound[name]

        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                    *(a for a in (node.args.vararg, node.args.kwarg) if a)]:
            arg.arg = bind(arg.arg)
        for child in ast.walk(node):
            if child is node:
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                bind(child.id)
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id in bound:
                child.id = bound[child.id]
            elif isinstance(child, ast.arg) and child is not None and child.arg in bound:
                child.arg = bound[child.arg]
        for child in node.body:
            self.visit(child)
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function


def _cosmetic_python(code: str) -> str | None:
    tree = _parse_python(code)
    if tree is None:
        return None
    return ast.dump(_Rename().visit(tree))


def _cosmetic_sql(code: str, engine: str) -> str | None:
    from sqlglot import exp

    expression = _parse_sql(code, engine)
    if expression is None:
        return None
    aliases: dict[str, str] = {}
    for table_alias in expression.find_all(exp.TableAlias):
        name = table_alias.name
        if name and name.lower() not in aliases:
            aliases[name.lower()] = f"a{len(aliases)}"

    def rewrite(node):
        if isinstance(node, exp.TableAlias) and node.name.lower() in aliases:
            return exp.TableAlias(this=exp.to_identifier(aliases[node.name.lower()]))
        if isinstance(node, exp.Column) and node.table and node.table.lower() in aliases:
            return exp.column(node.name, table=aliases[node.table.lower()])
        return node

    expression = expression.transform(rewrite)
    select = expression if isinstance(expression, exp.Select) else expression.find(exp.Select)
    if select is not None:
        select.set("expressions", [e.this if isinstance(e, exp.Alias) else e for e in select.expressions])
    return _render_sql(expression, engine)


def cosmetic_equal(a: str, b: str, domain: str, engine: str = "sqlite") -> bool:
    if domain == "python":
        ca, cb = _cosmetic_python(a), _cosmetic_python(b)
    else:
        ca, cb = _cosmetic_sql(a, engine), _cosmetic_sql(b, engine)
    return ca is not None and ca == cb
