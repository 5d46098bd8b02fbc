# ==================================================================================================
# core/checks: each hyperparameter's valid range and the rules between them, checked when the run starts
# ==================================================================================================
# golfc build applies the same functions to the emitted defaults (golfc/hparams.py), so a value that passes
# the build passes here, and NUM_LAYERS=-3 in the environment is one line and exit code 2, not a traceback.
# A range is ((op, limit), ...) with op one of ">=", ">", "<="; a rule is (kind, left, right, factor, note).
import sys

RANGE_OPS = {">=": lambda v, lim: v >= lim, ">": lambda v, lim: v > lim, "<=": lambda v, lim: v <= lim}
# rule kind -> (whether it holds for the left value and the divisor factor * right, the rule in words);
# a zero divisor fails "multiple" and "even_quotient"
RULE_KINDS = {
    "multiple": (lambda left, divisor: divisor != 0 and left % divisor == 0, "{left} to be a multiple of {right}"),
    "even_quotient": (lambda left, divisor: divisor != 0 and (left // divisor) % 2 == 0, "{left} / {right} to be even"),
    "at_least": (lambda left, divisor: left >= divisor, "{left} >= {right}"),
}


def range_problem(name, value, bounds):
    """``None`` when ``value`` (or, for a list, each element) is inside every bound, else
    ``"NAME=value: expected NAME >= 1"``."""
    elements = value if isinstance(value, tuple) else (value,)
    if all(RANGE_OPS[op](v, limit) for v in elements for op, limit in bounds):
        return None
    wanted = " and ".join(f"{name} {op} {limit!r}" for op, limit in bounds)
    shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else repr(value)
    return f"{name}={shown}: expected {wanted}{' for each element' if isinstance(value, tuple) else ''}"


def rule_problem(rule, values):
    """``None`` when the rule holds for ``values`` ({NAME: value}), else one line naming both values."""
    kind, left_name, right_name, factor, note = rule
    holds, words = RULE_KINDS[kind]
    if holds(values[left_name], factor * values[right_name]):
        return None
    why = f" ({note})" if note else ""
    shown = f"{left_name}={values[left_name]!r}, {right_name}={values[right_name]!r}"
    right = right_name if factor == 1 else f"{factor} * {right_name}"
    return f"{shown}: expected {words.format(left=left_name, right=right)}{why}"


def hparam_problems(values, ranges, rules):
    """Every range problem, then (when the ranges hold) every rule problem, as one-line texts."""
    problems = [p for name, bounds in ranges.items() if (p := range_problem(name, values[name], bounds))]
    if problems:
        return problems  # a rule over an out-of-range value would only repeat it
    return [p for rule in rules if (p := rule_problem(rule, values))]


def check_hparam_values(hparams_cls, ranges=None, rules=()):
    """Exit with one line (code 2) when a hyperparameter is out of its range or breaks a rule between two of
    them. Called by the hparams section right after class Hyperparameters has read the environment."""
    names = set(ranges or {}) | {name for rule in rules for name in rule[1:3]}
    values = {name: getattr(hparams_cls, name.lower()) for name in names}
    problems = hparam_problems(values, ranges or {}, rules)
    if problems:
        print(f"error: {problems[0]}", file=sys.stderr)
        sys.exit(2)
