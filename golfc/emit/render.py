"""Generated sections (the Hyperparameters class, the wiring block) and the readable program."""

from __future__ import annotations

import textwrap
from itertools import groupby

from golfc import __version__
from golfc.emit.sections import Section
from golfc.engine import Resolution
from golfc.hparams import HParam, Rule, list_text
from golfc.slots import SLOTS, Cardinality

BANNER_WIDTH = 100


def banner(title: str, char: str = "=") -> str:
    return f"# {char * (BANNER_WIDTH - 2)}\n# {title}\n# {char * (BANNER_WIDTH - 2)}\n"


def hparam_line(param: HParam) -> str:
    """One class attribute: ``name = type(os.environ.get("NAME", default))  # doc``."""
    env = f"os.environ.get({param.name!r}, {param.default!r})"
    if param.kind == "bool":
        env = f"os.environ.get({param.name!r}, {str(int(bool(param.default)))!r})"
        expr = f"bool(int({env}))"
    elif param.kind == "intlist":
        env = f"os.environ.get({param.name!r}, {list_text(param.default)!r})"
        expr = f"tuple(int(v) for v in {env}.split(',') if v.strip())"
    elif param.kind == "str":
        expr = env
    else:
        expr = f"{param.kind}({env})"
    return f"    {param.attr} = {expr}  # {param.doc}\n"


def names_tuple(keyword: str, names: list[str]) -> str:
    """``keyword=('A', 'B', ...),`` wrapped to the banner width, one indent deep."""
    if not names:
        return ""
    body = textwrap.fill(", ".join(repr(n) for n in names) + ",", BANNER_WIDTH - 8, break_on_hyphens=False)
    return f"    {keyword}=(\n" + textwrap.indent(body, " " * 8) + "\n    ),\n"


def environment_check(params: list[HParam]) -> str:
    """The call that turns a malformed number in the environment into a one-line error before the class reads it."""
    by_kind = {kind: [p.name for p in params if p.kind == kind] for kind in ("int", "float", "bool", "intlist")}
    choices = [f"        {p.name!r}: {p.choices!r},\n" for p in params if p.choices]
    return (
        "# A malformed value in the environment is one line and exit code 2, not a traceback or a late failure.\n"
        "check_environment(\n"
        + names_tuple("ints", by_kind["int"])
        + names_tuple("floats", by_kind["float"])
        + names_tuple("flags", by_kind["bool"])
        + names_tuple("int_lists", by_kind["intlist"])
        + ("    choices={\n" + "".join(choices) + "    },\n" if choices else "")
        + ")\n\n\n"
    )


def value_check(params: list[HParam], rules: list[Rule]) -> str:
    """The call, after the class has read the environment, that refuses a value out of its range or breaking a
    rule between two knobs (one line, exit code 2); empty when nothing is bounded."""
    ranges = [f"        {p.name!r}: {p.bounds!r},\n" for p in params if p.bounds]
    if not ranges and not rules:
        return ""
    rule_lines = [f"        {r.as_tuple()!r},  # {r.owner}\n" for r in rules]
    return (
        "\n\n# A value out of its range, or two that do not fit together, is one line and exit code 2.\n"
        "check_hparam_values(\n    Hyperparameters,\n"
        + "    ranges={\n" + "".join(ranges) + "    },\n"
        + "    rules=(\n" + "".join(rule_lines) + "    ),\n"
        + ")\n"
    )


def render_hparams(params: list[HParam], rules: list[Rule] | None = None) -> str:
    out = [
        "import os\n\n",
        environment_check(params),
        "class Hyperparameters:\n",
        '    """Every knob is an environment variable of the same name, read once at import."""\n',
    ]
    for owner, group in groupby(params, key=lambda p: p.owner):
        out.append(f"\n    # -- {owner if owner == 'core' else 'plugins/' + owner}\n")
        out.extend(hparam_line(p) for p in group)
    out.append(value_check(params, rules or []))
    return "".join(out)


def render_wiring(resolution: Resolution) -> str:
    """Bind every slot's run-time globals to the chosen plugins' symbols (data, not logic)."""
    out = ["# Each slot global is bound to the symbol of the plugin that fills it (golfc/slots.py).\n"]
    for slot in SLOTS:
        bindings = resolution.bindings.get(slot.name, [])
        if slot.cardinality is Cardinality.MANY:
            (global_name,) = slot.wiring
            items = "".join(f"    {b.symbols[global_name]},  # plugins/{b.plugin}\n" for b in bindings)
            out.append(f"{global_name} = [\n{items}]\n" if items else f"{global_name} = []  # slot {slot.name}: none\n")
            continue
        if not bindings:
            out.extend(f"{g} = None  # slot {slot.name}: none\n" for g in slot.wiring)
            continue
        (binding,) = bindings
        out.extend(f"{g} = {binding.symbols[g]}  # plugins/{binding.plugin}\n" for g in slot.wiring)
    return "".join(out)


def _docstring_char(ch: str) -> str:
    if ch in ('\\', '"'):
        return "\\" + ch
    return ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")


def docstring_text(text: str) -> str:
    """``text`` escaped for a triple-quoted docstring (backslashes, quotes, unprintable characters), so that
    the docstring parses and reads as ``text``; printable text without either character is unchanged."""
    return "".join(_docstring_char(ch) for ch in text)


def program_docstring(resolution: Resolution) -> str:
    requested = ", ".join(resolution.requested) or "none (the reference baseline)"
    pinned = ", ".join(f"{k}={v}" for k, v in sorted(resolution.recipe.overrides.items())) or "none"
    requested, pinned = docstring_text(requested), docstring_text(pinned)
    return (
        f'"""Parameter Golf training script, built by golfc {__version__}.\n\n'
        f"Plugins: {requested}.\nActive: {', '.join(resolution.active)}.\nPinned: {pinned}.\n\n"
        "Run: torchrun --standalone --nproc_per_node=8 train_gpt.py   (any of 1, 2, 4, 8 GPUs; DEVICE=cpu for tests)\n"
        "Every hyperparameter is an environment variable; see class Hyperparameters.\n"
        '"""\n'
    )


def readable_program(resolution: Resolution, sections: list[Section]) -> str:
    """``train_gpt.src.py``: every section in order under its banner; runs as it is."""
    parts = [program_docstring(resolution), "from __future__ import annotations\n"]
    for section in sections:
        parts.append("\n\n")
        if not section.source.lstrip().startswith("# ==="):  # run-time files bring their own banner
            where = "generated by golfc" if section.origin == "generated" else section.origin
            parts.append(banner(f"{section.name}: {where}"))
        parts.append(section.source if section.source.endswith("\n") else section.source + "\n")
    return "".join(parts)
