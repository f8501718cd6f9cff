"""The warm worker that runs inside the sandbox: it pre-imports the heavy modules once, then forks a fresh
child per job, supervises it from outside (CPU time, output bytes, process count; wall time only as a backstop
for programs that sleep or block) and reports a verdict.

Self-contained on purpose (standard library only, plus numpy/pandas when installed): it is started as a
script inside bubblewrap and must not import the package, which may live in a folder the sandbox cannot see.

Protocol with the host, over stdin/stdout: 4-byte big-endian length + UTF-8 JSON. The host sends
{"i": index, "job": {...}}; the worker answers {"i": index, "result": {...}, "retire": bool}. The candidate's
process never holds these descriptors. Run as PID 1 of its own PID namespace (bwrap --as-pid-1), the worker
cannot be signalled by the candidate, and `kill(-1, SIGKILL)` ends every process the job left behind.
"""

from __future__ import annotations

import ast
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback

MAX_FRAME = 1 << 20
FEEDBACK_LIMIT = 600
CANDIDATE_FILE = "<candidate>"
WATCHDOG_EVERY_S = 0.005
CPU_EVERY_S = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PRELOAD = ("collections", "itertools", "functools", "heapq", "bisect", "re", "math", "string", "random",
           "statistics", "fractions", "decimal", "datetime", "typing", "json", "copy", "operator", "hashlib",
           "unittest", "unittest.mock", "numpy", "numpy.testing", "pandas", "pandas.testing")
# Attributes a program could overwrite to make failing tests pass; any change fails the job.
GUARDED = {"builtins": None, "unittest.case": ("TestCase",), "numpy.testing": None, "pandas.testing": None,
           "math": ("isclose",), "operator": None}


# ------------------------------------------------------------------------------------------ framing
def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    if size > 256 * MAX_FRAME:  # a job carrying a suite's test data (LiveCodeBench) can be tens of MB
        raise ValueError("frame too large")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def write_frame(fd: int, obj) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ------------------------------------------------------------------------------------------ harness
def _snapshot() -> list[tuple]:
    """Identity of every guarded attribute, taken before the candidate runs."""
    snap = [(sys.modules, name, sys.modules[name], "sys.modules") for name in (*GUARDED, "numpy", "pandas", "unittest")
            if name in sys.modules]
    for module_name, attrs in GUARDED.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        containers = [(vars(module), module_name)]
        if attrs is not None:
            containers = []
            for attr in attrs:
                obj = getattr(module, attr, None)
                if isinstance(obj, type):
                    containers.append((vars(obj), f"{module_name}.{attr}"))
                elif obj is not None:
                    snap.append((vars(module), attr, obj, module_name))
        for mapping, label in containers:
            snap.extend((mapping, key, value, label) for key, value in list(mapping.items()))
    return snap


def _tampered(snap: list[tuple]) -> str | None:
    for mapping, key, original, label in snap:
        if key not in mapping or mapping[key] is not original:
            return f"{label}.{key}"
    return None


def _candidate_line(tb, insert_offset: int, n_lines: int) -> int | None:
    """The deepest traceback line inside the candidate's own code, in the candidate's numbering."""
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == CANDIDATE_FILE:
            line = frame.lineno
        elif frame.filename == "<string>" and insert_offset >= 0 and frame.lineno is not None:
            inner = frame.lineno - insert_offset
            if 1 <= inner <= n_lines:
                line = inner
    return line


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not cost the verdict
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------------ returned values
CAPTURE = "_codelutra_tested_value_"
_SAFE_MODULES = ("builtins", "numpy", "pandas", "collections", "decimal", "fractions", "datetime")


def _holds_objects(x) -> bool:
    """numpy/pandas containers of arbitrary objects: their repr would call the objects' own __repr__."""
    if type(x).__module__.split(".")[0] not in ("numpy", "pandas"):
        return False
    try:
        dtypes = list(x.dtypes) if hasattr(x, "dtypes") else [x.dtype] if hasattr(x, "dtype") else []
        return any(getattr(d, "kind", "O") == "O" for d in dtypes)
    except Exception:  # noqa: BLE001
        return True


def _safe_repr(value) -> str:
    """A bounded repr that never runs code the program defined (its classes may override __repr__)."""
    import reprlib

    class Bounded(reprlib.Repr):
        def repr1(self, x, level):
            if type(x).__module__.split(".")[0] not in _SAFE_MODULES or _holds_objects(x):
                return f"<{type(x).__name__} object>"
            return super().repr1(x, level)

    r = Bounded()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 8, 8, 8, 8
    r.maxstring, r.maxother, r.maxlong = 120, 120, 60
    try:
        return r.repr(value)[:200]
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__} object>"


class _Capture(ast.NodeTransformer):
    """Wrap the tested expression of each assert (the left side of a comparison, the operand of `not`, the
    first argument of a call such as isclose(f(x), y)) in a recorder call. The expression is still evaluated
    once, in the same order: what the program returned is seen without running it twice."""

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if isinstance(test, ast.Compare):
            test.left = self._wrap(test.left)
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test.operand = self._wrap(test.operand)
        elif isinstance(test, ast.Call) and test.args:
            test.args[0] = self._wrap(test.args[0])
        return node

    @staticmethod
    def _wrap(expr: ast.expr) -> ast.expr:
        call = ast.Call(func=ast.Name(id=CAPTURE, ctx=ast.Load()), args=[expr], keywords=[])
        return ast.copy_location(call, expr)


def _compile_test(source: str, filename: str):
    """The test compiled with its asserts recording their tested value; plain when that cannot be done."""
    try:
        tree = _Capture().visit(ast.parse(source))
        return compile(ast.fix_missing_locations(tree), filename, "exec", dont_inherit=True)
    except Exception:  # noqa: BLE001 - the untransformed test is always a valid fallback
        return compile(source, filename, "exec", dont_inherit=True)


# Modes in which the program is not run by the harness but handed to the tests as the text `code` (DS-1000's
# test_execution(code); LiveCodeBench's stdin programs, run once per test with that test's input).
SOURCE_MODES = ("ds1000", "source")


class _TestTimeout(BaseException):
    """A test ran past its own CPU limit (EvalPlus-style per-test limits); other tests go on."""


def _on_sigprof(signum, frame):
    raise _TestTimeout()


def run_harness(job: dict, report) -> None:
    """Load the candidate, run the tests one by one, and report through `report` (a closure over the
    harness's own descriptor). Never returns normally: the caller exits the process right after."""
    import builtins

    code = job["code"]
    insert_offset = job.get("insert_offset", -1)
    n_lines = code.count("\n") + 1
    result = {"tests_passed": 0, "tests_total": sum(1 for _, is_test in job["tests"] if is_test),
              "error_lines": []}

    def finish(status: str, feedback: str = "", line: int | None = None, error: str = "", test: str = "",
               returned: str = "") -> None:
        result.update(status=status, feedback=feedback[:FEEDBACK_LIMIT], error=error[:300], failing_test=test[:300],
                      returned=returned[:200])
        if line:
            result["error_lines"] = [line]
        report(result)

    try:
        compiled = compile(code, CANDIDATE_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        error = f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}"
        return finish("syntax_error", error + (f" (line {line})" if line else ""), line, error)
    clean_builtins = dict(vars(builtins))
    snap = _snapshot()
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        if job.get("setup"):
            exec(compile(job["setup"], "<setup>", "exec", dont_inherit=True), namespace)
        if job.get("mode") in SOURCE_MODES:
            namespace = {"__name__": "__test__", "code": code}
            if job.get("data"):
                namespace["test_data"] = job["data"]
        else:
            exec(compiled, namespace)
    except BaseException as exc:  # noqa: BLE001 - every way the program can fail is a verdict
        status = "oom" if isinstance(exc, MemoryError) else "runtime_error"
        if isinstance(exc, SystemExit):
            return finish(status, f"the program called exit({exc.code!r}) before the tests ran",
                          error=f"SystemExit({exc.code!r})")
        return finish(status, _describe(exc), _candidate_line(exc.__traceback__, insert_offset, n_lines),
                      _describe(exc))
    tests_ns = dict(namespace)
    tests_ns["__builtins__"] = clean_builtins
    entry = job.get("entry_point")
    if entry and job.get("mode") not in SOURCE_MODES:
        if not callable(namespace.get(entry)):
            error = f"NameError: the program defines no function named {entry!r}"
            return finish("runtime_error", error, error=error)
        tests_ns["candidate"] = namespace[entry]
    try:
        if job.get("test_setup"):
            exec(compile(job["test_setup"], "<tests>", "exec", dont_inherit=True), tests_ns)
    except BaseException as exc:  # noqa: BLE001
        return finish("runtime_error", "test setup failed: " + _describe(exc),
                      _candidate_line(exc.__traceback__, insert_offset, n_lines), _describe(exc))
    first_failure = None
    aborted = False
    tested: list = []

    def record(value):
        tested[:] = [value]
        return value

    tests_ns[CAPTURE] = record
    step_limits = job.get("step_cpu_s") or []
    measured: list = []
    if step_limits:
        signal.signal(signal.SIGPROF, _on_sigprof)
    for index, (source, is_test) in enumerate(job["tests"]):
        if aborted:
            break
        tested.clear()
        limit = step_limits[index] if index < len(step_limits) else 0
        started = time.process_time()
        try:
            if limit:
                signal.setitimer(signal.ITIMER_PROF, limit)
            exec(_compile_test(source, f"<test {index}>"), tests_ns)
            if limit:
                signal.setitimer(signal.ITIMER_PROF, 0)
            if is_test:
                result["tests_passed"] += 1
        except BaseException as exc:  # noqa: BLE001
            if limit:
                signal.setitimer(signal.ITIMER_PROF, 0)
            if isinstance(exc, _TestTimeout):
                exc.limit = limit
            if first_failure is None:
                first_failure = (exc, source, list(tested))
            aborted = not is_test or bool(job.get("fail_fast"))
        if job.get("measure_steps"):
            measured.append(round(time.process_time() - started, 6))
    if job.get("measure_steps"):
        result["test_cpu_s"] = measured
    where = _tampered(snap)
    if where is not None:
        result["tests_passed"] = 0
        return finish("runtime_error", f"the program modified the test harness ({where})")
    if first_failure is None:
        return finish("passed" if result["tests_passed"] == result["tests_total"] else "runtime_error")
    exc, source, value = first_failure
    line = _candidate_line(exc.__traceback__, insert_offset, n_lines)
    test_text = source.strip().splitlines()[0][:200] if source.strip() else ""
    test_full = source.strip()
    if isinstance(exc, _TestTimeout):
        message = f"CPU time limit of {exc.limit:g} s for this test exceeded"
        return finish("timeout", f"{message} in test: {test_text}", line, message, test_full)
    if isinstance(exc, AssertionError):
        message = _describe(exc)
        returned = _safe_repr(value[0]) if value else ""
        return finish("wrong_answer", f"{message} in test: {test_text}", line, message, test_full, returned)
    status = "oom" if isinstance(exc, MemoryError) else "runtime_error"
    if isinstance(exc, SystemExit):
        return finish(status, f"the program called exit({exc.code!r}) during test: {test_text}", line,
                      f"SystemExit({exc.code!r})", test_full)
    return finish(status, f"{_describe(exc)} in test: {test_text}", line, _describe(exc), test_full)


# ------------------------------------------------------------------------------------------ supervisor
def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(job: dict, limits: dict, result_w: int, output_w: int, workdir: str, nonce: str) -> None:
    """In the forked child: detach from the worker's descriptors, apply limits, run the harness, exit."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.closerange(3, result_w)
        os.closerange(result_w + 1, 4096)
        os.chdir(workdir)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        cpu = int(math.ceil(limits["cpu_time_s"])) + 1  # per-process backstop; the supervisor counts the job's total
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size_bytes() + limits["memory_mb"] * 2**20,) * 2)
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["max_procs"],) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["max_files"],) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["max_file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")
        sys.stdin = open(0, "r", closefd=False)
        sys.argv = ["candidate"]
        sys.setrecursionlimit(1000)
    except BaseException:  # noqa: BLE001
        os._exit(70)
    write, dumps = os.write, json.dumps

    def report(payload: dict) -> None:
        body = dumps({**payload, "nonce": nonce}).encode("utf-8")
        write(result_w, struct.pack(">I", len(body)) + body)

    try:
        run_harness(job, report)
    except BaseException:  # noqa: BLE001 - a harness failure is not a verdict; the supervisor sees no result
        pass
    os._exit(0)


def _count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def _job_cpu_s(pid: int, own_pidns: bool) -> float:
    """CPU seconds used by the job: user + system time of every process of the namespace but the worker (or of
    the job's own process without one), each with the time of the children it has reaped. Unlike wall time,
    this does not grow when other work competes for the cores."""
    pids = [n for n in os.listdir("/proc") if n.isdigit() and n != "1"] if own_pidns else [str(pid)]
    ticks = 0
    for name in pids:
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > 14:
            ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _kill_all(pid: int, own_pidns: bool) -> None:
    try:
        if own_pidns:
            os.kill(-1, signal.SIGKILL)  # from PID 1: every process of the namespace but ourselves
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int, own_pidns: bool, wait_s: float = 2.0) -> tuple[int | None, float, bool]:
    """Collect the job's exit status and CPU time, and every leftover; False when something could not be
    collected."""
    status, cpu = None, 0.0
    stop = time.monotonic() + wait_s
    while True:
        try:
            got, code, usage = os.wait4(-1 if own_pidns else pid, os.WNOHANG)
        except ChildProcessError:
            return status, cpu, True
        if got == pid:
            status, cpu = code, usage.ru_utime + usage.ru_stime
            if not own_pidns:
                return status, cpu, True
        elif got == 0:
            if time.monotonic() > stop:
                return status, cpu, False
            time.sleep(0.001)


def _clean_dir(path: str, keep: tuple[str, ...] = ()) -> bool:
    """Empty the scratch folder, sparing read-only binds that live inside it (and the folders above them)."""
    import shutil

    ok = True
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if full in keep:
            continue
        if any(k.startswith(full + "/") for k in keep):
            ok = _clean_dir(full, keep) and ok
            continue
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except OSError:
            ok = False
    return ok


def supervise(job: dict, limits: dict, own_pidns: bool, scratch: str, keep: tuple[str, ...] = ()) -> tuple[dict, bool]:
    """Run one job in a forked child; returns (verdict, retire_worker)."""
    started = time.monotonic()
    base = {"tests_passed": 0, "tests_total": sum(1 for _, t in job["tests"] if t), "error_lines": []}
    if job.get("code") is None:
        return {**base, "status": "no_code", "feedback": "no code found in the answer", "duration_s": 0.0}, False
    workdir = os.path.join(scratch, "job")
    os.makedirs(workdir, exist_ok=True)
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    nonce = os.urandom(16).hex()
    pid = os.fork()
    if pid == 0:
        _child(job, limits, result_w, output_w, workdir, nonce)
    os.close(result_w)
    os.close(output_w)
    deadline = started + limits["wall_time_s"]
    buffers = {result_r: bytearray(), output_r: bytearray()}
    out_bytes, open_fds, problem = 0, {result_r, output_r}, None
    exit_status, next_watch, next_cpu, cpu_s = None, 0.0, 0.0, 0.0
    while open_fds:
        now = time.monotonic()
        if now >= deadline:
            problem = "wall"
            break
        if now >= next_cpu:
            next_cpu = now + CPU_EVERY_S
            cpu_s = max(cpu_s, _job_cpu_s(pid, own_pidns))
            if cpu_s > limits["cpu_time_s"]:
                problem = "cpu"
                break
        ready, _, _ = select.select(list(open_fds), [], [], min(deadline - now, WATCHDOG_EVERY_S * 4))
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
            elif fd == output_r:
                out_bytes += len(data)
                if len(buffers[output_r]) < 4096:
                    buffers[output_r] += data[:4096]
            elif len(buffers[result_r]) < MAX_FRAME:
                buffers[result_r] += data
        if out_bytes > limits["max_output_bytes"]:
            problem = "output"
            break
        if own_pidns and time.monotonic() >= next_watch:
            next_watch = time.monotonic() + WATCHDOG_EVERY_S
            if _count_processes() > limits["max_procs"] + 1:
                problem = "procs"
                break
        if exit_status is None:
            got, code, usage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                exit_status = code
                cpu_s = max(cpu_s, usage.ru_utime + usage.ru_stime)
                # Late writes by leftovers can keep pipes open: take what is there and stop waiting.
                for fd in list(open_fds):
                    while select.select([fd], [], [], 0)[0]:
                        data = os.read(fd, 65536)
                        if not data:
                            break
                        if fd == result_r and len(buffers[result_r]) < MAX_FRAME:
                            buffers[result_r] += data
                break
    _kill_all(pid, own_pidns)
    status_code, reaped_cpu, reaped_all = _reap(pid, own_pidns)
    if exit_status is None:
        exit_status = status_code
        cpu_s = max(cpu_s, reaped_cpu)
    os.close(result_r)
    os.close(output_r)
    cleaned = _clean_dir(scratch, keep)
    duration = round(time.monotonic() - started, 4)
    retire = not reaped_all or not cleaned
    verdict = _verdict(base, bytes(buffers[result_r]), bytes(buffers[output_r]), exit_status, problem, limits,
                       nonce)
    verdict["duration_s"] = duration
    verdict["cpu_s"] = round(cpu_s, 3)
    return verdict, retire


def _verdict(base: dict, result: bytes, output: bytes, exit_status: int | None, problem: str | None,
             limits: dict, nonce: str) -> dict:
    """Only the harness's own message counts: it must carry this job's nonce (a program that writes a
    well-formed message to a descriptor it finds does not know it)."""
    if problem == "cpu":
        return {**base, "status": "timeout", "feedback": f"CPU time limit of {limits['cpu_time_s']:g} s exceeded"}
    if problem == "wall":
        return {**base, "status": "timeout", "feedback": f"wall-clock limit of {limits['wall_time_s']:g} s exceeded "
                                                         "(the program slept or waited)"}
    if problem == "output":
        return {**base, "status": "runtime_error",
                "feedback": f"output limit exceeded (more than {limits['max_output_bytes']} bytes printed)"}
    if problem == "procs":
        return {**base, "status": "runtime_error",
                "feedback": f"process limit exceeded (more than {limits['max_procs']} processes)"}
    if len(result) >= 4:
        (size,) = struct.unpack(">I", result[:4])
        body = result[4:4 + size]
        if len(body) == size:
            try:
                got = json.loads(body.decode("utf-8"))
                if isinstance(got, dict) and got.get("status") and got.get("nonce") == nonce:
                    keys = ("status", "feedback", "tests_passed", "error_lines", "error", "failing_test", "returned",
                            "test_cpu_s")
                    return {**base, **{k: got[k] for k in keys if k in got}}
            except ValueError:
                pass
    if exit_status is not None and os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        if sig == signal.SIGXCPU:
            return {**base, "status": "timeout", "feedback": "CPU time limit exceeded"}
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return {**base, "status": "runtime_error", "feedback": f"the program was killed by {name}"}
    code = os.WEXITSTATUS(exit_status) if exit_status is not None and os.WIFEXITED(exit_status) else None
    tail = output[-300:].decode("utf-8", "replace").strip()
    return {**base, "status": "runtime_error",
            "feedback": (f"the program exited (code {code}) before the tests finished"
                         + (f"; output: {tail}" if tail else ""))[:FEEDBACK_LIMIT]}


def main() -> None:
    config = json.loads(sys.argv[1])
    own_pidns = os.getpid() == 1
    signal.signal(signal.SIGINT, signal.SIG_DFL if own_pidns else signal.SIG_IGN)
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - optional modules (numpy, pandas) may be absent
            pass
    scratch = config["scratch"]
    os.makedirs(scratch, exist_ok=True)
    inp, out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    for _ in range(config["recycle_after"]):
        message = read_frame(inp)
        if message is None:
            return
        verdict, retire = supervise(message["job"], message["limits"], own_pidns, scratch,
                                    tuple(config.get("keep", ())))
        write_frame(out, {"i": message["i"], "result": verdict, "retire": retire})
        if retire:
            return


if __name__ == "__main__":
    main()
