"""EvalPlus (HumanEval+, MBPP+), graded as `evalplus.eval.unsafe_execute` grades, with the program in its own
process: the inputs, the expected outputs (or the reference that computes them) and every comparison stay in the
judge's. Each test `_evalplus_check(fn, k)` calls the program's function on a deep copy of input k and compares:
exact match; MBPP's special oracles; HumanEval/32 by the polynomial's value; `atol` raised to 1e-6 once a float
output is seen (and kept raised for later inputs, as EvalPlus does); then same type, same length and
`np.allclose(rtol=1e-07, atol)`."""

from __future__ import annotations

import copy
import math

from harnesses import module

load = module.load
PROGRAM_ARGS = ()


def _is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    try:
        import numpy
    except ImportError:
        return False
    return isinstance(x, numpy.ndarray) and x.dtype in (numpy.float64, numpy.float32)


def _poly(xs, x):
    return sum(c * math.pow(x, i) for i, c in enumerate(xs))


def _surface_area(base_edge, height):
    slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 4 * (base_edge * slant) / 2)


def _digit_distance(a, b):
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width)))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _exact(out, exp, inp, entry: str, dataset: str, atol: float, set_equal, not_none) -> tuple:
    """(matches exactly or by the task's oracle, the expected value as compared)."""
    exact = out == exp
    if dataset == "mbpp":
        if entry == "are_equivalent":
            exact = True
        elif entry == "sum_div":
            exact = exact or out == 0
        elif entry == "surface_Area":
            exact = exact or abs(out - _surface_area(*inp)) <= atol
        elif entry == "digit_distance_nums":
            exact = exact or out == _digit_distance(*inp)
        elif entry in set_equal:
            exact = set(out) == set(exp)
        elif entry in not_none:
            exp = exp is not None if not isinstance(exp, bool) else exp
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    return exact, exp


def judge(namespace: dict, program, job: dict) -> None:
    module.judge(namespace, program, job)
    args = job.get("harness_args") or {}
    entry, dataset = args["entry"], args["dataset"]
    set_equal, not_none = tuple(args.get("set_equal") or ()), tuple(args.get("not_none") or ())
    state = {"atol": float(args.get("atol") or 0.0)}

    def check(fn, k: int) -> None:
        inp = namespace["inputs"][k]
        out = fn(*copy.deepcopy(inp))
        atol = state["atol"]
        if dataset == "humaneval" and entry == "find_zero":
            assert abs(_poly(*inp, out)) <= atol, "input %d: f(%s) is not 0" % (k, _show(out))
            return
        exp = namespace["results"][k] if "results" in namespace else namespace["ref_func"](*copy.deepcopy(inp))
        exact, exp = _exact(out, exp, inp, entry, dataset, atol, set_equal, not_none)
        if atol == 0 and _is_floats(exp):
            atol = state["atol"] = 1e-6
        message = "input %d: expected %s, got %s" % (k, _show(exp), _show(out))
        if not exact and atol != 0:
            import numpy
            assert type(out) == type(exp), message
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp), message
            assert numpy.allclose(out, exp, rtol=1e-07, atol=atol), message
        else:
            assert exact, message

    namespace["_evalplus_check"] = check
