"""Every bad input is one line. The walk below takes every option of every command from the commands and their
settings classes (not from a list written here), feeds each wrong types and absurd values, as a flag and as a
YAML config value, and requires: exit status 2, exactly one line on stderr starting with `error:` that names the
option (or the path given), no traceback, and nothing written in the working directory. The cases run in this
process (`cli.main`), each in a fresh working directory, and every one must fail at validation: whatever would
start real work (references, a model, a training, the loop's stages) is replaced by a tripwire. The reported
cases (non-UTF-8 files, a bad Spider dev.json, a truncated parquet in a release, repo ids a push refuses) follow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path

import click
import pytest
import yaml

from codelutra_data import cli
from codelutra_data.trainers.refine.config import SECTIONS, SHARED

INT_PROBES = (-1, 0, 10**12)
FLOAT_PROBES = (-1.0, 0.0, 1e12)
MISSING_INPUT = "./does-not-exist"  # written as a path, so never a name (a bundled model, a Hub id)
BLOCKED_OUTPUT = "blocker/sub"  # every working directory has a file `blocker` and a folder `afolder`
OUTPUTS_NAMED = (MISSING_INPUT, BLOCKED_OUTPUT, "blocker", "afolder")  # values an error names instead of the option
# A valid invocation of each command; a case replaces the entry of the option it tests. Inputs live outside the
# working directory, outputs inside it. Accepted as is, each would go on to real work, which the tripwires stop.
BASELINES = {
    "build": {}, "doctor": {}, "leaderboard": {}, "tasks list": {}, "tasks show": {"source": ["mbpp"]},
    "tasks fetch": {"sources": ["hf:my-org/my-tasks"]},
    "eval": {"suite": ["--suite", "mbpp"], "model": ["--model", "smollm2-135m"]},
    "train": {"data": ["--data", "{pairs}"], "out": ["--out", "model"]},
    "refine": {"out": ["--out", "loop"]},
    "push": {"release": ["{release}"], "repo_id": ["--repo", "my-org/my-sql"], "dry_run": ["--dry-run"]},
}
EXCLUSIVE = {"eval": {"model", "samples", "predictions"}}  # one of them is graded: testing one drops the others


class WorkStarted(Exception):
    """Raised by the tripwires: a case got past validation into real work."""


@dataclasses.dataclass(frozen=True)
class Case:
    command: str  # "build", "tasks show"
    what: str  # the option under test, as the test id shows it
    args: tuple[str, ...]  # the bad flag and value, if given on the command line
    config: tuple = ()  # ((key, value),) or (("section", {key: value}),) for a YAML config file
    replaces: str = ""  # the baseline entry this case replaces
    names: tuple[str, ...] = ()  # the error line names one of these


def _base(hint: typing.Any) -> typing.Any:
    """The type a field holds, without `| None`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return arms[0] if len(arms) == 1 else str
    return typing.get_origin(hint) or hint


def _hints(cls: type) -> dict[str, typing.Any]:
    """Flat field name -> type hint, groups included."""
    out: dict[str, typing.Any] = {}
    own = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.update(_hints(f.metadata["group"]) if "group" in f.metadata else {f.name: own[f.name]})
    return out


def _outside(value: float, declared: tuple) -> bool:
    """The principled skip: a number inside the range its setting declares is accepted by design."""
    at_least, above, at_most = declared
    return not math.isfinite(value) or (at_least is not None and value < at_least) or (
        above is not None and value <= above) or (at_most is not None and value > at_most)


def _word_or_number(hint: typing.Any, meta: dict) -> bool:
    """A setting that is a word or a whole number (`--batch-size auto`)."""
    return bool(meta.get("choices")) and int in typing.get_args(hint)


def flag_values(hint: typing.Any, meta: dict) -> list[str]:
    """Bad command-line values for a setting: the wrong type, and absurd values outside its declared range."""
    base, declared = _base(hint), meta.get("range", (None, None, None))
    if _word_or_number(hint, meta):
        return ["abc", "1.5", *(str(v) for v in INT_PROBES if _outside(v, declared))]
    if base is int:
        return ["abc", "1.5", *(str(v) for v in INT_PROBES if _outside(v, declared))]
    if base is float:
        return ["abc", "1e999", "-1e999", "nan", *(repr(v) for v in FLOAT_PROBES if _outside(v, declared))]
    if base is tuple:
        return ["abc", "1,abc"]
    if meta.get("choices"):
        return ["no-such-choice"]
    return {"input": [MISSING_INPUT], "output-folder": [BLOCKED_OUTPUT, "blocker"],
            "output-file": [BLOCKED_OUTPUT, "afolder"]}.get(meta.get("path"), [])  # free text: any text is text


def yaml_values(hint: typing.Any, meta: dict) -> list[object]:
    """Bad config-file values: YAML's own wrong types, and the command line's absurd values."""
    base = _base(hint)
    if _word_or_number(hint, meta):
        return ["abc", "64", 1.5, [1], *(v for v in INT_PROBES if _outside(v, meta["range"]))]
    if base is bool:
        return ["abc", 2]
    if base is int:
        return ["abc", 1.5, [1], *(v for v in INT_PROBES if _outside(v, meta["range"]))]
    if base is float:
        return ["abc", [1.0], math.inf, -math.inf, math.nan, *(v for v in FLOAT_PROBES if _outside(v, meta["range"]))]
    if base is tuple:
        return [{"a": 1}, ["abc"]]
    if base is dict:
        return ["abc", [1]]
    return [5, ["x"], *flag_values(hint, meta)]


def _plain_values(param: click.Parameter) -> list[str]:
    """Bad values for an option that is not a setting, from its click type alone."""
    kind = param.type
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return ["abc"]
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.Path):
        return [MISSING_INPUT]  # the plain paths (--config, push's RELEASE) are read
    if isinstance(param, click.Argument):
        return ["no-such-source"]  # `tasks show`, `tasks fetch`: a name that names nothing
    return []


def commands() -> dict[str, click.Command]:
    """Every command by its full name, subcommands of a group included."""
    ctx = click.Context(cli.cli)
    found = {}
    for name in cli.LAZY_COMMANDS:
        command = cli.cli.get_command(ctx, name)
        subs = command.commands if isinstance(command, click.Group) else {"": command}
        found.update({f"{name} {sub}".strip(): cmd for sub, cmd in subs.items()})
    return found


def _setting_of(command: click.Command, param: click.Parameter):
    """(flat name, field, hint) of the setting behind a click parameter, or None: by the parameter's name (with
    its section's prefix), else by a flag the setting declares (eval's --k)."""
    owners = getattr(command.callback, "settings_options", [])
    for by_flag in (False, True):
        for cls, section in owners:
            hints = _hints(cls)
            for name, (f, _) in cls.fields_by_name().items():
                matches = (set(f.metadata.get("flags") or ()) & set(param.opts) if by_flag
                           else param.name == (f"{section}__{name}" if section else name))
                if matches:
                    return name, f, hints[name]
    return None


def _config_class(command: click.Command):
    """The settings class a command's --config file holds (its options without a section)."""
    if not any(p.name == "config_file" for p in command.params):
        return None
    return next(cls for cls, section in command.callback.settings_options if section is None)


def walk() -> list[Case]:
    cases = []
    for name, command in commands().items():
        for param in command.params:
            if not isinstance(param, (click.Option, click.Argument)):
                continue
            found = _setting_of(command, param)
            opts = tuple(param.opts)
            if isinstance(param, click.Option) and param.is_flag:
                cases.append(Case(name, f"{opts[0]}=abc", (f"{opts[0]}=abc",), replaces=param.name, names=opts))
                continue
            if found:
                field_name, f, hint = found
                values = flag_values(hint, dict(f.metadata))
                names = opts + (field_name,) + tuple(f.metadata.get("flags") or ())
            else:
                values, names, field_name = _plain_values(param), opts + (param.name,), param.name
            for value in values:
                args = (opts[0], value) if isinstance(param, click.Option) else (value,)
                cases.append(Case(name, f"{opts[0] if opts else param.name} {value}", args, replaces=field_name,
                                  names=names + ((value,) if value in OUTPUTS_NAMED else ())))
        cls = _config_class(command)
        if cls is not None:
            cases += _yaml_cases(name, cls, None, set())
            if name == "refine":
                shared = {n for group in SHARED for n in group.layout()}
                for section, (section_cls, fixed) in SECTIONS.items():
                    skip = fixed | (shared if section == "build" else set())
                    cases += _yaml_cases(name, section_cls, section, skip)
    return cases


def _yaml_cases(command: str, cls: type, section: str | None, skip: set[str]) -> list[Case]:
    cases = []
    hints = _hints(cls)
    for name, (f, _) in cls.fields_by_name().items():
        if name in skip:
            continue
        for value in yaml_values(hints[name], dict(f.metadata)):
            config = ((section, {name: value}),) if section else ((name, value),)
            where = f"{section}." if section else ""
            names = (name,) + ((value,) if value in OUTPUTS_NAMED else ())
            cases.append(Case(command, f"yaml {where}{name}: {value!r}", (), config,
                              replaces="" if section else name, names=names))
    return cases


CASES = walk()


def tree(root: Path) -> list[tuple[str, int]]:
    """Every file and folder under root, with sizes: what 'nothing written' compares."""
    out = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            out.append((str(path.relative_to(root)), -1 if path.is_dir() else path.stat().st_size))
    return sorted(out)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Valid inputs the baselines read: a pairs file and a release (outside every working directory)."""
    root = tmp_path_factory.mktemp("inputs")
    chat = [{"role": "user", "content": "q"}]
    (root / "pairs.jsonl").write_text(json.dumps({"prompt": chat, "chosen": chat, "rejected": chat}) + "\n")
    return {"pairs": str(root / "pairs.jsonl"), "release": str(write_release(root / "release"))}


def write_release(out: Path) -> Path:
    """A small release in the layout `build` writes, made by hand (no model, no sandbox)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (out / "pairs").mkdir(parents=True)
    pq.write_table(pa.table({"prompt": ["q"], "chosen": ["a"], "rejected": ["b"]}), out / "pairs" / "train-b.parquet")
    identity = {"build_id": "b", "config": {"name": "r", "version": "0.1.0"}}
    (out / "build_config.yaml").write_text(yaml.safe_dump(identity))
    (out / "README.md").write_text("---\nconfigs:\n- config_name: pairs\n  data_files:\n  - split: train\n"
                                   "    path: pairs/train-b.parquet\n---\n# r\n")
    return out


@pytest.fixture
def tripwires(monkeypatch):
    """Real work raises WorkStarted instead of starting; no input reaches the Hub."""

    def trip(*_args, **_kwargs):
        raise WorkStarted("a bad value was accepted: real work started")

    monkeypatch.setattr("codelutra_data.builders.pipeline.References.check", classmethod(trip))
    monkeypatch.setattr("codelutra_data.builders.pipeline.check_references", trip)
    monkeypatch.setattr("codelutra_data.models.engine.LazyBackend.generate", trip)
    monkeypatch.setattr("codelutra_data.models.spec.prepare_bundled", trip)
    monkeypatch.setattr("codelutra_data.trainers.train.load_model", trip)
    monkeypatch.setattr("codelutra_data.trainers.refine.loop._loop", trip)
    monkeypatch.setattr("codelutra_data.builders.tasks.hub.load", trip)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


def run_cli(args: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, out: str, err: str) -> str:
    """Exit status 2 and one `error:` line, no traceback; returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.command}: {c.what}")
def test_every_bad_value_of_every_option_is_one_line(case, tmp_path, capsys, monkeypatch, inputs, tripwires):
    work = tmp_path / "work"
    work.mkdir()
    (work / "blocker").write_text("a file where a folder would have to be\n")
    (work / "afolder").mkdir()
    baseline = dict(BASELINES[case.command])
    exclusive = EXCLUSIVE.get(case.command, set())
    for dropped in exclusive if case.replaces in exclusive else {case.replaces}:
        baseline.pop(dropped, None)
    args = [*case.command.split(), *(a.format(**inputs) for given in baseline.values() for a in given), *case.args]
    if case.config:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(dict(case.config)))
        args += ["--config", str(tmp_path / "config.yaml")]
    before = tree(work)
    line = assert_one_line(*run_cli(args, work, capsys, monkeypatch))
    assert any(name in line for name in case.names), f"the error does not name {case.names}: {line}"
    assert tree(work) == before, "something was written"


def test_the_walk_covers_every_command_and_declares_every_range():
    """Every command is walked, and every number a user can set declares at least its lower bound (so the walk's
    absurd values are refused by a rule, not by luck)."""
    assert {c.command for c in CASES} == set(commands())
    unbounded = []
    for command in commands().values():
        for cls, _ in getattr(command.callback, "settings_options", []):
            hints = _hints(cls)
            for name, (f, _) in cls.fields_by_name().items():
                if _base(hints[name]) in (int, float) and f.metadata["range"][:2] == (None, None):
                    unbounded.append(f"{cls.__name__}.{name}")
    assert not unbounded, unbounded


# ------------------------------------------------------------------------------------------ the reported cases
def cli_error(args: list[str], cwd: Path, capsys, monkeypatch) -> str:
    """The one error line of a command that must fail at its input, with nothing written in `cwd`."""
    before = tree(cwd)
    line = assert_one_line(*run_cli(args, cwd, capsys, monkeypatch))
    assert tree(cwd) == before, "something was written"
    return line


@pytest.mark.parametrize("command, config, message", [
    ("build", {"samples": "abc"}, "samples (--samples) must be a whole number, got 'abc'"),
    ("build", {"limit": [1, 2]}, "limit (--limit) must be a whole number, got [1, 2]"),
    ("build", {"temperature": "hot"}, "temperature (--temperature) must be a number, got 'hot'"),
    ("build", {"mode": "bogus"}, "mode (--mode) must be one of pairs, trajectories, got 'bogus'"),
    ("build", {"isolation": "weird"}, "isolation (--isolation) must be one of bwrap, none, got 'weird'"),
    ("build", {"wall_time_s": 1e999}, "wall_time_s (--wall-time) must be a finite number, got inf"),
    ("build", {"batch_size": "64"}, "batch_size (--batch-size) must be auto or a whole number, got '64' (text; "
                                    "write it unquoted)"),
    ("build", {"batch_size": "lots"}, "batch_size (--batch-size) must be auto or a whole number, got 'lots'"),
    ("build", {"overlap": "maybe"}, "overlap (--overlap) must be one of auto, on, off, got 'maybe'"),
    ("train", {"epochs": "3", "data": "x", "out": "o"}, "epochs (--epochs) must be a number, got '3'"),
    ("refine", {"out": "o", "train": {"lora_r": "16"}}, "train: lora_r (--lora-r) must be a whole number"),
    ("refine", {"out": "o", "eval": {"limit": 5}}, "eval option(s) limit are set by refine itself"),
])
def test_wrong_types_in_a_config_file(tmp_path, capsys, monkeypatch, tripwires, command, config, message):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    assert message in cli_error([command, "--config", str(tmp_path / "c.yaml")], work, capsys, monkeypatch)


NOT_UTF8 = b"\xff\xfe"


@pytest.mark.parametrize("args", [["build", "--tasks", "t.jsonl"], ["tasks", "show", "t.jsonl"],
                                  ["eval", "--suite", "t.jsonl", "--model", "smollm2-135m"],
                                  ["doctor", "--tasks", "t.jsonl"]])
def test_a_task_file_that_is_not_utf8(tmp_path, capsys, monkeypatch, tripwires, args):
    (tmp_path / "t.jsonl").write_bytes(b'{"question": "q", "db": "x.sqlite", "gold": "SELECT 1"}\n'
                                       b'{"question": "q' + NOT_UTF8 + b'", "db": "x.sqlite", "gold": "SELECT 1"}\n')
    line = cli_error(args, tmp_path, capsys, monkeypatch)
    assert line == "error: t.jsonl:2: not UTF-8 text (byte 0xff); save the file as UTF-8"


def test_a_config_file_that_is_not_utf8(tmp_path, capsys, monkeypatch, tripwires):
    (tmp_path / "c.yaml").write_bytes(b"samples: 2\nname: caf" + NOT_UTF8 + b"\n")
    line = cli_error(["build", "--config", "c.yaml"], tmp_path, capsys, monkeypatch)
    assert line == "error: c.yaml:2: not UTF-8 text (byte 0xff); save the file as UTF-8"


@pytest.mark.parametrize("name, content, suite", [
    ("pred.txt", b"SELECT 1 " + NOT_UTF8 + b"\n", "spider-dev"),
    ("pred.json", b'{"0": "SELECT ' + NOT_UTF8 + b'"}', "spider-dev"),
    ("samples.jsonl", b'{"task_id": "Mbpp/2", "solution": "' + NOT_UTF8 + b'"}\n', "mbpp"),
])
def test_a_predictions_file_that_is_not_utf8(tmp_path, capsys, monkeypatch, tripwires, name, content, suite):
    (tmp_path / name).write_bytes(content)
    option = "--samples" if name.endswith(".jsonl") else "--predictions"
    line = cli_error(["eval", "--suite", suite, "--limit", "1", option, name], tmp_path, capsys, monkeypatch)
    assert line == f"error: {name}:1: not UTF-8 text (byte 0xff); save the file as UTF-8"


@pytest.mark.parametrize("questions, message", [
    ({"question": "q"}, "expected a JSON list of questions"),
    ([1, 2], "entry 0 is not an object"),
    ([{"question": "q", "db_id": 5, "query": "SELECT 1"}], "entry 0: db_id must be text, got int"),
    ([{"question": "q", "db_id": ["x"], "query": "SELECT 1"}], "entry 0: db_id must be text, got list"),
    ([{"question": 5, "db_id": "x", "query": "SELECT 1"}], "entry 0: question must be text, got int"),
    ([{"question": "q", "db_id": "../x", "query": "SELECT 1"}], "entry 0: db_id '../x' is not a database folder"),
])
def test_a_spider_dev_json_of_the_wrong_shape(tmp_path, spider_db, capsys, monkeypatch, tripwires, questions, message):
    (tmp_path / "spider" / "database" / "x").mkdir(parents=True)
    spider_db().rename(tmp_path / "spider" / "database" / "x" / "x.sqlite")
    (tmp_path / "spider" / "dev.json").write_text(json.dumps(questions))
    for args in (["tasks", "show", "spider"], ["build", "--tasks", "spider"]):
        assert message in cli_error(args, tmp_path, capsys, monkeypatch)


OUT_OF_RANGE = "Invalid value for '--wall-time': inf is not in the range 0<x<=86400"


@pytest.mark.parametrize("args, message", [
    (["build", "--wall-time", "1e999"], OUT_OF_RANGE),
    (["eval", "--suite", "mbpp", "--model", "smollm2-135m", "--wall-time", "1e999"], OUT_OF_RANGE),
    (["doctor", "--wall-time", "1e999"], OUT_OF_RANGE),
    (["build", "--cpu-time", "nan"], "cpu_time_s (--cpu-time) must be a finite number, got nan"),
    (["train", "--data", "x", "--out", "o", "--beta", "1e999"], "beta (--beta) must be a finite number, got inf"),
])
def test_an_overflowing_float(tmp_path, capsys, monkeypatch, tripwires, args, message):
    assert message in cli_error(args, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_truncated_parquet_in_a_release_is_refused_by_push_and_its_dry_run(tmp_path, capsys, monkeypatch,
                                                                            tripwires, dry_run):
    release = write_release(tmp_path / "release")
    data = release / "pairs" / "train-b.parquet"
    data.write_bytes(data.read_bytes()[:100])
    line = cli_error(["push", str(release), "--repo", "my-org/my-sql", *(["--dry-run"] if dry_run else [])],
                     tmp_path, capsys, monkeypatch)
    assert line.startswith(f"error: {data}: not a readable parquet file (")


@pytest.mark.parametrize("repo", ["../x", "a/b/c", "x", "a/b--c", "a/..", "a/b.git", "a b/c"])
def test_push_dry_run_refuses_the_repo_ids_a_real_push_refuses(tmp_path, capsys, monkeypatch, tripwires, repo):
    release = write_release(tmp_path / "release")
    dry = cli_error(["push", str(release), "--repo", repo, "--dry-run"], tmp_path, capsys, monkeypatch)
    monkeypatch.setenv("HF_TOKEN", "hf_never_used")
    real = cli_error(["push", str(release), "--repo", repo], tmp_path, capsys, monkeypatch)
    assert dry == real and f"--repo {repo!r} is not a Hub repository id" in dry
    assert cli_error(["build", "--push-to-hub", repo], tmp_path, capsys, monkeypatch).startswith(
        f"error: --push-to-hub {repo!r} is not a Hub repository id")


def test_a_good_release_and_repo_id_pass_the_dry_run(tmp_path, capsys, monkeypatch, tripwires):
    release = write_release(tmp_path / "release")
    code, out, err = run_cli(["push", str(release), "--repo", "my-org/my-sql", "--dry-run"], tmp_path, capsys,
                             monkeypatch)
    assert code == 0 and "then tag v0.1.0" in out and not err


def test_the_train_schedules_are_transformers_own():
    """The schedules `--lr-scheduler` offers exist in transformers (the others need arguments we do not pass)."""
    transformers = pytest.importorskip("transformers")
    from codelutra_data.trainers.config import SCHEDULERS

    assert set(SCHEDULERS) <= {s.value for s in transformers.SchedulerType}
