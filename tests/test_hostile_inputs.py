"""The adversarial battery: inputs a careless or hostile user gives, and what the tool must do with them (one
line and exit status 2, nothing half-written, no network, nothing unbounded started)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest


def sqlite_named_duckdb(folder):
    path = folder / "trap.duckdb"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE singer (name TEXT, age INTEGER)")
    con.execute("INSERT INTO singer VALUES ('a', 30)")
    con.commit()
    con.close()
    return path


def test_no_input_makes_duckdb_reach_the_network(tmp_path):
    """A SQLite file named .duckdb is the input that makes DuckDB download its sqlite extension: every place
    that opens DuckDB (task loader, sandbox, table-columns helper, results store) is given it, under strace,
    and no socket other than a local one may be connected."""
    trap = sqlite_named_duckdb(tmp_path)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "t1", "question": "How many singers?", "db": str(trap),
                                 "gold": "SELECT count(*) FROM singer"}) + "\n")
    script = textwrap.dedent(f"""
        from codelutra_data.builders.tasks import load_tasks
        from codelutra_data.errors import UserError
        from codelutra_data.sandboxes.sql import SqlLimits, QueryFailed, run_query, table_columns
        from codelutra_data.benchmarks.store import read_rows
        messages = []
        try:
            load_tasks({str(tasks)!r})
        except UserError as exc:
            messages.append(str(exc))
        try:
            run_query("duckdb", {str(trap)!r}, "SELECT 1", SqlLimits())
        except QueryFailed as exc:
            messages.append(exc.message)
        try:
            table_columns("duckdb", {str(trap)!r})
        except QueryFailed as exc:
            messages.append(exc.message)
        try:
            read_rows({str(trap)!r})
        except UserError as exc:
            messages.append(str(exc))
        print("\\n".join(messages))
    """)
    trace = tmp_path / "trace.txt"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    messages = done.stdout.splitlines()
    assert len(messages) == 4, done.stdout
    for m in messages:
        assert "is a SQLite database, not a DuckDB one" in m or "sqlite" in m.lower(), m
    assert not any("INSTALL" in m or "download" in m.lower() for m in messages), messages
    calls = trace.read_text().splitlines()
    network = [c for c in calls if "connect(" in c and "AF_UNIX" not in c]
    assert network == [], network


# Each DuckDB type: the gold query, a correct answer written another way, and a wrong answer.
DUCK_TYPES = {
    "list": ("SELECT tags FROM typed WHERE id = 1", "SELECT list_value('b', 'a')[2:2] || ['b'] FROM typed WHERE id = 1",
             "SELECT ['a'] FROM typed WHERE id = 1"),
    "struct": ("SELECT info FROM typed ORDER BY id", "SELECT {'k': id, 'v': [id * 2]} FROM typed ORDER BY id",
               "SELECT {'k': id, 'v': [id]} FROM typed ORDER BY id"),
    "map": ("SELECT attrs FROM typed", "SELECT MAP {'y': id * 10, 'x': id} FROM typed",
            "SELECT MAP {'x': id} FROM typed"),
    "timestamptz": ("SELECT seen FROM typed WHERE id = 1",
                    "SELECT TIMESTAMPTZ '2024-03-01 10:00:00+00' FROM typed WHERE id = 1",
                    "SELECT TIMESTAMPTZ '2024-03-01 10:00:00+02' FROM typed WHERE id = 1"),
    "interval": ("SELECT wait FROM typed", "SELECT to_days(id) FROM typed", "SELECT to_hours(id) FROM typed"),
    "decimal": ("SELECT price FROM typed", "SELECT id * 1.25 FROM typed", "SELECT id * 1.2 FROM typed"),
    "blob": ("SELECT raw FROM typed", "SELECT ('\\x0' || id)::BLOB FROM typed", "SELECT 'x'::BLOB FROM typed"),
    "uuid": ("SELECT uid FROM typed WHERE id = 1", "SELECT '00000000-0000-0000-0000-000000000001'::UUID",
             "SELECT '00000000-0000-0000-0000-000000000002'::UUID"),
    "nested": ("SELECT [info] AS x, tags FROM typed ORDER BY id", "SELECT tags, [info] FROM typed ORDER BY id",
               "SELECT tags, [info, info] FROM typed ORDER BY id"),
}


def typed_duckdb(folder):
    import duckdb

    path = folder / "typed.duckdb"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Europe/Paris'")  # the writer's zone must not matter
    con.execute("""CREATE TABLE typed AS SELECT range AS id,
        CASE WHEN range = 1 THEN ['a', 'b'] ELSE ['c'] END AS tags,
        {'k': range, 'v': [range * 2]} AS info,
        MAP {'x': range, 'y': range * 10} AS attrs,
        TIMESTAMPTZ '2024-03-01 11:00:00+01' + to_days(range - 1) AS seen,
        to_days(range) AS wait,
        (range * 1.25)::DECIMAL(10, 2) AS price,
        ('\\x0' || range)::BLOB AS raw,
        ('00000000-0000-0000-0000-00000000000' || range)::UUID AS uid
        FROM range(1, 4)""")
    con.close()
    return path


@pytest.mark.parametrize("mode", ["spider", "set", "ordered"])
def test_duckdb_types_are_graded(tmp_path, mode):
    from codelutra_data.sandboxes.sql import SqlJob, SqlLimits, SqlSandbox

    db = str(typed_duckdb(tmp_path))
    jobs = []
    for name, (gold, right, wrong) in DUCK_TYPES.items():
        if mode != "spider" and name == "nested":
            right = "SELECT [info], tags FROM typed ORDER BY id"  # columns in order outside spider mode
        jobs += [SqlJob(f"{name}/right", "duckdb", db, gold, right, mode=mode),
                 SqlJob(f"{name}/wrong", "duckdb", db, gold, wrong, mode=mode)]
    with SqlSandbox(SqlLimits(cpu_time_s=5.0), workers=2) as sandbox:
        results = {e.sample_id: e for e in sandbox.run(jobs)}
    for name in DUCK_TYPES:
        right, wrong = results[f"{name}/right"], results[f"{name}/wrong"]
        assert right.status == "passed", (name, right.status, right.feedback)
        assert wrong.status == "wrong_answer", (name, wrong.status, wrong.feedback)
        assert "Traceback" not in wrong.feedback and "expected" in wrong.feedback


# ---------------------------------------------------------------- bounds on what a run starts and holds
def spider_predictions(folder, count: int = 1):
    from codelutra_data.builders.tasks import load_tasks

    tasks = load_tasks("spider-dev", "test", count)
    path = folder / "pred.txt"
    path.write_text("".join(t.reference + "\n" for t in tasks))
    return path


def test_huge_workers_start_no_more_processes_than_the_work_needs(tmp_path):
    """`--workers 100000` on one task once started a fork storm: count the sandbox workers a real eval execs."""
    from codelutra_data.machine import WORKERS_PER_CPU, usable_cpus

    trace = tmp_path / "trace.txt"
    args = [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev", "--split", "test", "--limit", "1",
            "--predictions", str(spider_predictions(tmp_path)), "--workers", "100000", "--store",
            str(tmp_path / "results.duckdb"), "--out", str(tmp_path / "out"), "--json"]
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), *args], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    workers = [line for line in trace.read_text().splitlines() if "codelutra_data.sandboxes.pool" in line]
    assert 1 <= len(workers) <= 2, workers  # one unit of work (the reference check and the grading may each start one)
    assert "more than this machine can use" in done.stderr
    results = json.loads(done.stdout)
    assert results["config"]["workers"] == WORKERS_PER_CPU * usable_cpus()  # what is recorded is what was allowed


@pytest.mark.parametrize("value", ["0", "-1", "two", "1e3"])
def test_workers_below_one_or_not_a_number_is_one_line(tmp_path, value):
    args = [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev", "--split", "test", "--limit", "1",
            "--predictions", str(spider_predictions(tmp_path)), "--workers", value, "--store",
            str(tmp_path / "results.duckdb")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "workers" in done.stderr.lower()
    assert not (tmp_path / "results.duckdb").exists() and not (tmp_path / "results").exists()


def test_sql_results_are_counted_as_rows_arrive_and_workers_have_an_address_space_limit(tmp_path):
    """`SELECT zeroblob(50000000) FROM t LIMIT 60` grew a worker to 3.1 GB before it was called too large."""
    db = tmp_path / "blob.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    con.commit()
    con.close()
    script = textwrap.dedent(f"""
        import json, resource
        from codelutra_data.sandboxes.sql import SqlJob, SqlLimits, SqlSandbox
        jobs = [SqlJob("blob", "sqlite", {str(db)!r}, "SELECT a FROM t", "SELECT zeroblob(50000000) FROM t LIMIT 60")]
        with SqlSandbox(SqlLimits(), workers=1) as sandbox:
            (result,) = sandbox.run(jobs)
            (slot,) = sandbox._pool._slots
            limits = open(f"/proc/{{slot.proc.pid}}/limits").read()
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        line = next(l for l in limits.splitlines() if l.startswith("Max address space"))
        print(json.dumps({{"status": result.status, "feedback": result.feedback, "peak_mb": peak_mb,
                          "address_space": line.split()[3], "expected": SqlLimits().worker_memory_mb * 2**20}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["status"] == "runtime_error" and "result too large" in got["feedback"], got
    assert got["peak_mb"] < 400, got  # one 50 MB row at a time, never a batch of them
    assert int(got["address_space"]) == got["expected"], got


# ---------------------------------------------------------------- kill -9 at every write of an eval
def eval_args(folder, *extra: str) -> list[str]:
    return [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev", "--split", "test", "--limit",
            "3", "--predictions", str(spider_predictions(folder, 3)), "--store", str(folder / "s" / "results.duckdb"),
            "--write-predictions", str(folder / "p" / "graded.txt"), "--json", *extra]


def killed_at(folder, syscalls: str, when: int, path: str | None = None) -> subprocess.CompletedProcess:
    """Run the eval under strace, which sends SIGKILL as it enters the `when`-th of these syscalls."""
    trace = ["strace", "-f", "-qq", "--signal=none", "-o", "/dev/null", "-e", f"trace={syscalls}",
             "-e", f"inject={syscalls}:signal=SIGKILL:when={when}", *(["-P", path] if path else [])]
    return subprocess.run([*trace, *eval_args(folder)], capture_output=True, text=True, timeout=600, cwd=folder)


def store_dates(store_file) -> dict:
    import duckdb

    con = duckdb.connect(str(store_file), read_only=True)
    try:
        return {h: str(d) for h, d in con.execute("SELECT DISTINCT config_hash, date FROM results").fetchall()}
    finally:
        con.close()


def partials(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".*partial-*"))


def check_consistent(folder) -> None:
    """The store and the files agree, and nothing partial is left."""
    store_file = folder / "s" / "results.duckdb"
    dates = store_dates(store_file)
    (run,) = (folder / "s" / "runs").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert dates == {results["config_hash"]: str(__import__("datetime").datetime.fromisoformat(results["date"])
                                                 .replace(tzinfo=None))}
    assert len((run / "per_task.jsonl").read_text().splitlines()) == 3
    assert len((folder / "p" / "graded.txt").read_text().splitlines()) == 3
    assert partials(folder) == []


@pytest.mark.parametrize("syscall,when", [("link", 1), ("rename", 1), ("rename", 2), ("rename", 3)])
def test_kill_at_each_rename_of_a_first_eval(tmp_path, syscall, when):
    """The store's creation (a link) and the three renames of the commit, on a user's very first run."""
    killed = killed_at(tmp_path, syscall, when)
    assert killed.returncode != 0
    store_file = tmp_path / "s" / "results.duckdb"
    board = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "leaderboard", "--store", str(store_file),
                            "--json"], capture_output=True, text=True, timeout=300)
    if store_file.exists():
        assert board.returncode == 0, board.stderr  # a store at the real name is always a whole one
    else:
        assert board.returncode == 2 and "no results store" in board.stderr
    again = subprocess.run(eval_args(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    check_consistent(tmp_path)


@pytest.mark.parametrize("syscalls,when,on_store", [("rename", 1, False), ("rename", 2, False), ("rename", 3, False),
                                                     ("pwrite64", 1, True), ("fsync,fdatasync", 1, True)])
def test_kill_at_each_write_of_a_rerun(tmp_path, syscalls, when, on_store):
    from codelutra_data.benchmarks.results_files import settle

    first = subprocess.run(eval_args(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    store_file = tmp_path / "s" / "results.duckdb"
    before = store_dates(store_file)
    killed = killed_at(tmp_path, syscalls, when, str(store_file) if on_store else None)
    assert killed.returncode != 0
    after = store_dates(store_file)  # the store opens, and holds the old run or the new one
    assert list(after) == list(before)
    (run,) = (tmp_path / "s" / "runs").iterdir()
    settle(run, str(store_file))  # what the next eval does first: finish a committed run, undo the rest
    results = json.loads((run / "results.json").read_text())
    assert str(__import__("datetime").datetime.fromisoformat(results["date"]).replace(tzinfo=None)) == after[results["config_hash"]]
    again = subprocess.run(eval_args(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    check_consistent(tmp_path)


def test_an_empty_store_left_by_an_older_kill_is_replaced(tmp_path):
    store_file = tmp_path / "s" / "results.duckdb"
    store_file.parent.mkdir()
    store_file.touch()
    board = subprocess.run([sys.executable, "-m", "codelutra_data.cli", "leaderboard", "--store", str(store_file)],
                           capture_output=True, text=True, timeout=300)
    assert board.returncode == 2 and "no results store" in board.stderr and "valid" not in board.stderr
    done = subprocess.run(eval_args(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "empty file left by an interrupted run" in done.stderr
    check_consistent(tmp_path)


def test_a_locked_store_is_waited_for_then_one_line_and_nothing_written(tmp_path):
    import duckdb

    store_file = tmp_path / "s" / "results.duckdb"
    first = subprocess.run(eval_args(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(store_file)!r}); "
                               "print('held', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (run,) = (tmp_path / "s" / "runs").iterdir()
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        done = subprocess.run(eval_args(tmp_path, "--store-wait", "1.5", "--seed", "1"), capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("waiting up to 1.5 s for the results store") and f"process {holder.pid}" in lines[0]
    assert lines[-1].startswith("error: the results store") and "in use by" in lines[-1] and len(lines) == 2
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before and partials(tmp_path) == []
    assert len(list((tmp_path / "s" / "runs").iterdir())) == 1
    duckdb.connect(str(store_file), read_only=True).close()


@pytest.mark.parametrize("flag,value", [("--out", "a-file"), ("--write-predictions", "graded.csv"),
                                        ("--write-predictions", "a-folder"), ("--store", "a-folder")])
def test_outputs_that_cannot_be_written_are_refused_before_grading(tmp_path, flag, value):
    (tmp_path / "a-file").write_text("mine\n")
    (tmp_path / "a-folder").mkdir()
    args = [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev", "--split", "test", "--limit",
            "3", "--predictions", str(spider_predictions(tmp_path, 3)), "--store", str(tmp_path / "s" / "r.duckdb"),
            flag, str(tmp_path / value)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "s").exists() and (tmp_path / "a-file").read_text() == "mine\n"
    assert list((tmp_path / "a-folder").iterdir()) == [] and partials(tmp_path) == []


# ---------------------------------------------------------------- a task set's databases stay inside it
def escaping_task_set(folder, how: str):
    """A SQL task file whose database leads outside its folder: absolute, `../`, or a link inside that points out;
    the database outside is a real one, which the tool must not open."""
    (folder / "elsewhere").mkdir()
    secret = folder / "elsewhere" / "secret.sqlite"
    con = sqlite3.connect(secret)
    con.execute("CREATE TABLE payroll (name TEXT, salary INTEGER)")
    con.commit()
    con.close()
    tasks = folder / "set"
    tasks.mkdir()
    db = {"absolute": str(secret), "climb": "../elsewhere/secret.sqlite", "link": "shop.sqlite"}[how]
    if how == "link":
        (tasks / "shop.sqlite").symlink_to(secret)
    (tasks / "tasks.jsonl").write_text(json.dumps({"question": "Who earns most?", "db": db,
                                                   "gold": "SELECT name FROM payroll"}) + "\n")
    (folder / "pred.txt").write_text("SELECT 1\n")
    return tasks / "tasks.jsonl", db


@pytest.mark.parametrize("how", ["absolute", "climb", "link"])
def test_a_task_database_outside_its_task_set_is_refused(tmp_path, how):
    """A task set's `db` could name any SQLite/DuckDB file of the machine (its schema then lands in prompts and
    releases, its rows in feedback): each command refuses it in one line naming the row and the path, and writes
    nothing."""
    tasks, db = escaping_task_set(tmp_path, how)
    before = sorted(p for p in tmp_path.rglob("*"))
    for args in (["doctor", "--tasks", str(tasks)],
                 ["build", "--tasks", str(tasks), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                  "--model", "m"],
                 ["eval", "--suite", str(tasks), "--predictions", str(tmp_path / "pred.txt"), "--store",
                  str(tmp_path / "results.duckdb")],
                 ["tasks", "show", str(tasks)]):
        done = subprocess.run([sys.executable, "-m", "codelutra_data.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{tasks}:1: database {db!r}" in lines[0] and "outside" in lines[0], lines[0]
        assert ("a link to " + str(tmp_path / "elsewhere" / "secret.sqlite")) in lines[0] or how != "link"
        assert "payroll" not in done.stdout + done.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_databases_inside_the_task_set_still_load(tmp_path):
    """What stays allowed: a path relative to the task file, an absolute path inside its folder, a link to another
    file of the folder, and a Spider folder's databases; a Spider folder's link that points out is refused too."""
    from codelutra_data.builders.tasks import load_tasks
    from codelutra_data.builders.tasks.sql_sources import BUNDLED_SPIDER
    from codelutra_data.errors import UserError

    singer = BUNDLED_SPIDER / "databases" / "singer.sqlite"
    (tmp_path / "set" / "dbs").mkdir(parents=True)
    (tmp_path / "set" / "dbs" / "singer.sqlite").write_bytes(singer.read_bytes())
    (tmp_path / "set" / "also.sqlite").symlink_to(tmp_path / "set" / "dbs" / "singer.sqlite")
    rows = [{"question": "How many?", "db": db, "gold": "SELECT count(*) FROM singer"}
            for db in ("dbs/singer.sqlite", str(tmp_path / "set" / "dbs" / "singer.sqlite"), "also.sqlite",
                       "dbs/../dbs/singer.sqlite")]
    (tmp_path / "set" / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_tasks(str(tmp_path / "set" / "tasks.jsonl"))) == 4
    spider = tmp_path / "spider"
    (spider / "database" / "singer").mkdir(parents=True)
    (spider / "dev.json").write_text(json.dumps([{"question": "How many?", "db_id": "singer",
                                                  "query": "SELECT count(*) FROM singer"}]))
    (spider / "database" / "singer" / "singer.sqlite").symlink_to(singer)
    with pytest.raises(UserError, match=r"dev.json: entry 0: database .* is a link to .*singer.sqlite, outside"):
        load_tasks(str(spider))
    (spider / "database" / "singer" / "singer.sqlite").unlink()
    (spider / "database" / "singer" / "singer.sqlite").write_bytes(singer.read_bytes())
    assert len(load_tasks(str(spider))) == 1


# ---------------------------------------------------------------- the shell's address-space limit
def test_a_ulimit_below_the_memory_budget_is_one_line_not_code_70(tmp_path):
    """Each program's process sets its address space to the worker's size plus --memory-mb; under a smaller
    `ulimit -v` it could not (a hard limit only goes down) and every program "exited (code 70)" with no word of why.
    Now one line naming the limit and the setting, before any worker starts; a budget that fits still runs."""
    (tmp_path / "tasks.jsonl").write_text(json.dumps({
        "task_id": "add/0", "prompt": "Add two numbers.", "tests": ["assert add(1, 2) == 3"],
        "reference": "def add(a, b):\n    return a + b\n", "entry_point": "add"}) + "\n")
    (tmp_path / "samples.jsonl").write_text(json.dumps({"task_id": "add/0", "solution": "def add(a, b):\n"
                                                        "    return a + b\n"}) + "\n")
    limit_kib = 8 * 2**20  # 8 GiB: room for the tool itself, not for a 100000 MiB budget

    def run(memory_mb: int) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", str(tmp_path / "tasks.jsonl"),
                "--samples", str(tmp_path / "samples.jsonl"), "--store", str(tmp_path / "results.duckdb"),
                "--memory-mb", str(memory_mb), "--json"]
        return subprocess.run(["bash", "-c", f'ulimit -v {limit_kib} && exec "$@"', "bash", *args],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    refused = run(100_000)
    assert refused.returncode == 2, refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"your shell's `ulimit -v` ({limit_kib} KiB" in lines[0] and "--memory-mb 100000" in lines[0], lines[0]
    assert "code 70" not in refused.stderr and not (tmp_path / "results.duckdb").exists()
    fits = run(1024)
    assert fits.returncode == 0, fits.stderr[-2000:]
    assert json.loads(fits.stdout)["metrics"]["pass@1"]["value"] == 1.0


def test_a_ulimit_below_a_sql_workers_address_space_is_one_line(tmp_path):
    """A SQL worker limits its own address space (SqlLimits.worker_memory_mb); under a smaller `ulimit -v` every
    worker died and each query read "sandbox worker died twice". Now one line naming the limit."""
    from codelutra_data.sandboxes.sql import SqlLimits

    limit_kib = (SqlLimits().worker_memory_mb - 64) * 1024
    args = [sys.executable, "-m", "codelutra_data.cli", "eval", "--suite", "spider-dev", "--split", "test", "--limit",
            "1", "--predictions", str(spider_predictions(tmp_path)), "--store", str(tmp_path / "results.duckdb")]
    done = subprocess.run(["bash", "-c", f'ulimit -v {limit_kib} && exec "$@"', "bash", *args], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"your shell's `ulimit -v` ({limit_kib} KiB" in lines[0], done.stderr
    assert "SQL sandbox worker" in lines[0] and not (tmp_path / "results.duckdb").exists()
