"""Settings: dataclasses that are at once the Python API, the YAML config file and the command line (TRL's
config dataclasses are the model).

A field made with `setting()` carries its help text, its flags where they are not `--the-field-name`, its choices
and, where the default needs words ("auto: ..."), how `--help` shows it. `flags.options()` turns a settings class
into click options, `load()` builds one from defaults < a YAML file < the flags given, and `validate()` checks every
value's type and what its field declares (choices, range, path) before the class's own rules, so a bad value is
one line wherever it came from.

Groups that several commands share (the model engine, sampling, the sandbox, where the work runs) are settings
classes nested in the commands' configurations with `group()`. Their fields keep flat names wherever a user writes
them: YAML keys, flags, and the constructor (`BuildConfig(batch_size=8)` reaches `cfg.engine.batch_size`), and
`cfg.batch_size` reads it back. `flat()` is the configuration as users write it, and what releases and results
record.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from codelutra_data.errors import UserError
from codelutra_data.files import read_text, writable_destination, writable_folder

T = TypeVar("T", bound="Settings")
PATHS = ("input", "output-folder", "output-file")
EXPLICIT_PATH = ("/", "./", "../", "~")  # a value written as a path, never a name
MAX_SEED = 2**32 - 1  # numpy takes seeds up to here, and transformers.set_seed seeds numpy with ours


def setting(default: Any = dataclasses.MISSING, help: str = "", *, flags: tuple[str, ...] = (),  # noqa: A002
            choices: tuple[str, ...] | None = None, shown: str | None = None, negatable: bool = False,
            factory: Callable[[], Any] | None = None, option: bool = True, at_least: float | None = None,
            above: float | None = None, at_most: float | None = None, path: str | None = None) -> Any:
    """A field with what `--help` says about it. `shown` replaces the default in the help text; `negatable`
    gives a boolean a `--no-` form; `option=False` keeps a field out of the command line (YAML and Python only).
    A number declares its range here (`at_least` or `above`, and `at_most`), so `validate()` refuses a value
    outside it in one line wherever it came from. `path` is "input" (a file or folder read, or a name),
    "output-folder" or "output-file": `--help` shows PATH, an input written as a path (./x, /x, ~/x) must exist and
    an output that cannot be written (a folder under a file, a file where a folder is) is refused before any work."""
    if path not in (None, *PATHS):
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    metadata = {"help": help, "flags": tuple(flags), "choices": tuple(choices) if choices else None,
                "shown": shown, "negatable": negatable, "option": option,
                "range": (at_least, above, at_most), "path": path}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(cls: type, **defaults: Any) -> Any:
    """A nested settings group, with this configuration's own defaults for some of its fields."""
    return dataclasses.field(default_factory=functools.partial(cls, **defaults), metadata={"group": cls})


def settings(cls: type[T] | None = None, *, frozen: bool = False):
    """Make a Settings subclass a dataclass whose constructor also takes its groups' fields by their flat names."""

    def wrap(klass: type[T]) -> type[T]:
        klass = dataclasses.dataclass(frozen=frozen)(klass)
        klass._layout_cache = None
        if not any(is_group(f) for f in dataclasses.fields(klass)):
            return klass
        generated = klass.__init__

        @functools.wraps(generated)
        def __init__(self, *args, **kwargs):
            loose: dict[str, dict] = {}
            for name in list(kwargs):
                path = klass.layout().get(name)
                if path:
                    loose.setdefault(path[0], {})[name] = kwargs.pop(name)
            by_name = {f.name: f for f in dataclasses.fields(klass)}
            for attr, values in loose.items():
                base = kwargs.get(attr)
                if base is None:
                    base = by_name[attr].default_factory()
                kwargs[attr] = dataclasses.replace(base, **values)
            generated(self, *args, **kwargs)

        klass.__init__ = __init__
        return klass

    return wrap(cls) if cls is not None else wrap


def is_group(f: dataclasses.Field) -> bool:
    return "group" in f.metadata


class Settings:
    """Base of every settings class; see the module docstring."""

    _layout_cache: dict[str, tuple[str, ...]] | None = None

    @classmethod
    def layout(cls) -> dict[str, tuple[str, ...]]:
        """Flat name -> the group attributes leading to it (empty for the class's own fields), in field order."""
        if cls.__dict__.get("_layout_cache") is None:
            layout: dict[str, tuple[str, ...]] = {}
            for f in dataclasses.fields(cls):
                inner = {f.name: ()} if not is_group(f) else {
                    name: (f.name, *path) for name, path in f.metadata["group"].layout().items()}
                for name, path in inner.items():
                    if name in layout:
                        raise TypeError(f"{cls.__name__}: setting {name!r} is defined twice")
                    layout[name] = path
            cls._layout_cache = layout
        return cls._layout_cache

    @classmethod
    def fields_by_name(cls) -> dict[str, tuple[dataclasses.Field, Any]]:
        """Flat name -> (its field, its default in this class), groups' defaults as this class sets them."""
        out: dict[str, tuple[dataclasses.Field, Any]] = {}
        defaults = cls._defaults()
        for f in dataclasses.fields(cls):
            if is_group(f):
                grouped = f.metadata["group"].fields_by_name()
                instance = defaults[f.name]
                out.update({name: (field, instance.get(name)) for name, (field, _) in grouped.items()})
            else:
                out[f.name] = (f, defaults[f.name])
        return out

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        values = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
            else:
                values[f.name] = None
        return values

    def get(self, name: str) -> Any:
        target: Any = self
        for attr in type(self).layout()[name]:
            target = getattr(target, attr)
        return getattr(target, name)

    def __getattr__(self, name: str) -> Any:
        path = type(self).layout().get(name) if not name.startswith("__") else None
        if not path:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        target: Any = self
        for attr in path:
            target = object.__getattribute__(target, attr)
        return getattr(target, name)

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name, groups in place: the configuration as users write and read it."""
        return {name: self.get(name) for name in type(self).layout()}

    def validate(self) -> None:
        """Types first (a YAML string where a number belongs), then each field's declared range and path, then
        each group's rules, then this class's."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if is_group(f):
                value.validate()
            elif not _fits(value, hints[f.name]):
                raise UserError(f"{_label(f)} must be {_describe(hints[f.name])}, got {value!r}")
            else:
                _check_value(f, value, hints[f.name])
        self.check()

    def check(self) -> None:
        """This class's own rules (ranges, choices, combinations); types are checked before."""

    @classmethod
    def file_values(cls, values: dict) -> dict:
        """A config file's values before the flags are laid over them (a class may move old spellings here)."""
        return values


def _check_value(f: dataclasses.Field, value: Any, hint: Any) -> None:
    """A value of the right type within what its field declares: one of its choices (or, for a word-or-number
    setting such as `--batch-size auto`, a number), a finite number in its range, an input written as a path that
    exists, an output that can be written."""
    choices = f.metadata.get("choices")
    if choices and isinstance(value, str) and value not in choices:
        if int in typing.get_args(hint):
            quoted = " (text; write it unquoted)" if value.strip().isdigit() else ""
            raise UserError(f"{_label(f)} must be {' or '.join(choices)} or a whole number, got {value!r}{quoted}")
        raise UserError(f"{_label(f)} must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{_label(f)} must be a finite number, got {value!r}")
    low, above, high = f.metadata.get("range", (None, None, None))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (low is not None and value < low) or (above is not None and value <= above) or (
                high is not None and value > high):
            raise UserError(f"{_label(f)} must be {describe_range(low, above, high)}, got {value!r}")
    kind = f.metadata.get("path")
    if kind == "output-folder" and isinstance(value, str) and value:
        writable_folder(value, _label(f))
    if kind == "output-file" and isinstance(value, str) and value:
        writable_destination(value, _label(f))
    if kind == "input" and isinstance(value, str) and value.startswith(EXPLICIT_PATH):
        if not os.path.exists(os.path.expanduser(value)):  # a name (a bundled model, a Hub id) is the loader's
            raise UserError(f"{_label(f)}: no file or folder at {value}")


def describe_range(at_least: float | None, above: float | None, at_most: float | None) -> str:
    """A declared range in words: 'at least 1', 'above 0 and at most 1'."""
    def number(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    parts = [f"{word} {number(bound)}" for word, bound in (("at least", at_least), ("above", above),
                                                            ("at most", at_most)) if bound is not None]
    return " and ".join(parts) or "any number"


def _label(f: dataclasses.Field) -> str:
    flags = f.metadata.get("flags") or (f"--{f.name.replace('_', '-')}",)
    return f"{f.name} ({flags[0]})" if f.metadata.get("option", True) and "help" in f.metadata else f.name


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, (tuple, list)) and all(_fits(v, args[0]) for v in value)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in typing.get_args(hint) if arm is not type(None))
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", dict: "a mapping"}
    if origin is tuple:
        return "a list of " + {int: "whole numbers", float: "numbers"}.get(typing.get_args(hint)[0], "texts")
    return names.get(hint, getattr(hint, "__name__", str(hint)))


# ------------------------------------------------------------------------------------------ files
def load_yaml(path: str | Path) -> dict:
    """A config file's mapping of option: value; a file that is missing, not UTF-8 or not YAML is one line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {path}")
    text = read_text(p)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting too deep
        raise UserError(f"{path}: cannot read its YAML ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of option: value")
    return data


def merge(cls: type[T], file_values: dict, overrides: dict[str, Any]) -> T:
    """Build `cls` from defaults < config file < explicit overrides (None means 'not given'). Overrides named
    `section__name` (see `options`) go into the dict field `section`."""
    names = set(cls.layout())
    file_values = cls.file_values(file_values)
    unknown = sorted(str(key) for key in set(file_values) - names)
    if unknown:
        raise UserError(f"unknown config option(s): {', '.join(unknown)}")
    values = dict(file_values)
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.partition("__")
        if name and section in names:
            base = values.get(section) or {}
            if isinstance(base, dict):  # anything else is refused by validate() as not a mapping
                values[section] = {**base, name: value}
        elif key in names:
            values[key] = value
    return cls(**values)


def load(cls: type[T], config_file: str | None, overrides: dict[str, Any]) -> T:
    """The configuration a command runs with: defaults < the YAML file < the flags given."""
    return merge(cls, load_yaml(config_file) if config_file else {}, overrides)
