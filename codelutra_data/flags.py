"""The command line of a settings class: click options made from its fields (config.py defines the fields and
their rules; this module only shows them as flags), and the options every command shares."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable

from codelutra_data.config import Settings, describe_range, is_group


def _word_or_whole_number(words: tuple[str, ...], at_least: float | None, at_most: float | None) -> Any:
    """The click type of a setting that is a word (`auto`) or a whole number in its range."""
    import click

    class WordOrWholeNumber(click.ParamType):
        name = "[" + "|".join(words) + "|INTEGER]"

        def convert(self, value, param, ctx):
            if isinstance(value, int) or value in words:
                return value
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not {' or '.join(words)} or a whole number", param, ctx)
            if (at_least is not None and number < at_least) or (at_most is not None and number > at_most):
                self.fail(f"{number} is out of range ({describe_range(at_least, None, at_most)})", param, ctx)
            return number

    return WordOrWholeNumber()


def _click_type(hint: Any):
    import click

    arms = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    base = arms[0] if len(arms) == 1 else str
    return {int: click.INT, float: click.FLOAT}.get(base, click.STRING)


def _number_type(kind: Any, at_least: float | None = None, above: float | None = None,
                 at_most: float | None = None) -> Any:
    """A number option's click type with its declared range, so `--help` shows the range."""
    import click

    if kind not in (click.INT, click.FLOAT) or (at_least, above, at_most) == (None, None, None):
        return kind
    ranged = click.IntRange if kind is click.INT else click.FloatRange
    typed = ranged(min=at_least if at_least is not None else above, max=at_most, min_open=above is not None)
    typed.name = kind.name  # "'abc' is not a valid integer", as for any other whole number
    return typed


def _shown(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def options(cls: type[Settings], *, only: tuple[str, ...] | None = None, flags: dict[str, tuple[str, ...]] | None = None,
            section: str | None = None, label: str = "") -> Callable:
    """Click options for a settings class's fields (all, or `only` these), in field order. `flags` renames a
    field's flags for this command; `section` prefixes the parameter names (`train__batch_size`) for a
    configuration that takes another command's options as a section, and `label` prefixes their help."""
    import click

    hints: dict[str, Any] = {}
    for owner in _classes(cls):
        hints.update(typing.get_type_hints(owner))
    decorators = []
    for name, (f, default) in cls.fields_by_name().items():
        meta = f.metadata
        if "help" not in meta or not meta["option"] or (only is not None and name not in only):
            continue
        decls = list((flags or {}).get(name) or meta["flags"] or (f"--{name.replace('_', '-')}",))
        param = f"{section}__{name}" if section else name
        shown = meta["shown"] if meta["shown"] is not None else _shown(default)
        text = label + meta["help"] + (f" [{shown}]" if shown else "")
        hint = hints[name]
        if hint is bool or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                            and set(typing.get_args(hint)) == {bool, type(None)}):
            if meta["negatable"]:
                decls = [f"{decls[0]}/--no-{decls[0][2:]}"]
                decorators.append(click.option(*decls, param, default=None, help=text))
            else:
                decorators.append(click.option(*decls, param, is_flag=True, default=None, help=text))
        elif meta["choices"] and int in typing.get_args(hint):
            low, _, high = meta.get("range", (None, None, None))
            decorators.append(click.option(*decls, param, type=_word_or_whole_number(meta["choices"], low, high),
                                           help=text))
        elif meta["choices"]:
            decorators.append(click.option(*decls, param, type=click.Choice(meta["choices"]), help=text))
        else:
            kind = click.Path() if meta.get("path") else _number_type(_click_type(hint), *meta.get("range", ()))
            decorators.append(click.option(*decls, param, type=kind, help=text))

    def apply(fn: Callable) -> Callable:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        # which settings class (and section) each command's options come from, for whoever walks the commands
        fn.settings_options = [*getattr(fn, "settings_options", []), (cls, section)]
        return fn

    return apply


def _classes(cls: type[Settings]) -> list[type]:
    out = [cls]
    for f in dataclasses.fields(cls):
        if is_group(f):
            out += _classes(f.metadata["group"])
    return out


def config_option(what: str) -> Callable:
    import click

    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        help=f"YAML file of {what} options; flags override it.")


def json_option(what: str = "the result") -> Callable:
    import click

    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")
