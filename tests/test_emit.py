"""The emitter's passes: import stripping, name checks, minification guard, the self-extracting wrapper."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from golfc.emit.minify import minify_source, normalized_dump
from golfc.emit.sections import Section, check_unique_names, strip_build_only_lines, top_level_names
from golfc.emit.wrap import unpack_payload, wrap_sections
from golfc.errors import EmitError


def run_script(path, *args, env=None):
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=env, timeout=120)


def test_project_imports_are_blanked_keeping_line_numbers():
    source = textwrap.dedent(
        """\
        from __future__ import annotations
        import math
        from golfc.runtime.model import (
            CastedLinear,
        )
        import golfc_plugins.muon.runtime as muon
        from .sibling import thing

        def f():
            return math.pi
        """
    )
    stripped = strip_build_only_lines(source, "x.py")
    assert stripped.count("\n") == source.count("\n")
    assert "golfc" not in stripped and "__future__" not in stripped and "sibling" not in stripped
    assert stripped.splitlines()[1] == "import math" and stripped.splitlines()[8] == "def f():"


def test_syntax_error_names_the_file_and_line():
    with pytest.raises(EmitError, match=r"plugins/x/runtime.py:2: syntax error"):
        strip_build_only_lines("a = 1\ndef (:\n", "plugins/x/runtime.py")


def test_top_level_names_cover_defs_classes_and_assignments():
    source = "import os\nA = 1\nB: int = 2\ndef f(): pass\nclass C: pass\nif A:\n    D = 3\ntry:\n    E = 4\nexcept Exception:\n    E = None\n"
    assert top_level_names(source) == {"A", "B", "f", "C", "D", "E"}


def test_duplicate_top_level_names_across_sections_are_an_error():
    sections = [
        Section("core/model", "def helper():\n    pass\n", "a.py"),
        Section("plugins/x", "helper = 3\n", "b.py"),
    ]
    with pytest.raises(EmitError, match=r"'helper' is defined by both <golfc:core/model> and <golfc:plugins/x>"):
        check_unique_names(sections)
    check_unique_names([Section("a", "import os\n", "a"), Section("b", "import os\n", "b")])  # imports may repeat


def test_minify_keeps_the_ast_and_drops_comments_and_docstrings():
    source = textwrap.dedent(
        '''\
        def f(x: int) -> int:
            """Docstring."""
            # a comment
            y = x + 1  # trailing
            return y


        class K:
            """Only a docstring."""
        '''
    )
    minified = minify_source(source, "t")
    assert "Docstring" not in minified and "comment" not in minified
    assert len(minified) < len(source)
    assert normalized_dump(minified) == normalized_dump(source)
    namespace: dict = {}
    exec(minified, namespace)
    assert namespace["f"](1) == 2


def test_minify_guard_rejects_a_changed_ast(monkeypatch):
    import python_minifier

    monkeypatch.setattr(python_minifier, "minify", lambda source, **_: "x = 2\n")
    with pytest.raises(EmitError, match=r"minifying <golfc:t> changed its AST"):
        minify_source("x = 1\n", "t")


def _wrapped(tmp_path, sections):
    path = tmp_path / "train_gpt.py"
    path.write_text(wrap_sections(sections))
    return path


def test_wrapper_roundtrips_its_payload_and_is_deterministic():
    sections = [Section("core/a", "A = 1\n", "a.py"), Section("plugins/b", "B = A + 1\nprint(B)\n", "b.py")]
    text = wrap_sections(sections)
    assert text == wrap_sections(sections)
    payload = text.split("b85decode('")[1].split("'")[0]
    assert unpack_payload(payload) == [("core/a", "A = 1\n"), ("plugins/b", "B = A + 1\nprint(B)\n")]
    assert len(text.splitlines()) == 12  # the loader (11 lines) and the call carrying the payload


def test_traceback_inside_a_section_names_it_and_shows_the_line(tmp_path):
    sections = [
        Section("core/a", "def explode():\n    value = 41\n    raise ValueError(f'boom {value + 1}')\n", "a.py"),
        Section("plugins/xsa", "def caller():\n    explode()\n\ncaller()\n", "b.py"),
    ]
    result = run_script(_wrapped(tmp_path, sections))
    assert result.returncode != 0
    assert 'File "<golfc:plugins/xsa>", line 2, in caller' in result.stderr
    assert 'File "<golfc:core/a>", line 3, in explode' in result.stderr
    assert "raise ValueError(f'boom {value + 1}')" in result.stderr  # the source line itself
    assert "ValueError: boom 42" in result.stderr


def test_inspect_getsource_and_future_annotations_work_in_sections(tmp_path):
    sections = [
        Section("core/a", "def later(x: NotDefinedYet) -> AlsoNot:\n    return x * 2\n", "a.py"),
        Section(
            "plugins/b",
            "import inspect\nprint(inspect.getsource(later).splitlines()[1].strip())\n"
            "print(sum(line.startswith('# <golfc:') for line in __golfc_source__.splitlines()))\n",
            "b.py",
        ),
    ]
    result = run_script(_wrapped(tmp_path, sections))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["return x * 2", "2"]


def test_inspect_getsource_of_classes_works_in_sections(tmp_path):
    """Each section's classes live in a module named after the section, so inspect (which finds a class through
    its module's __file__) reads the section's text; pickle and type hints resolve through that module."""
    sections = [
        Section(
            "core/a",
            "import torch\n\nclass Box:\n    def size(self) -> Later:\n        return 3\n\n"
            "class Oops(ValueError):\n    pass\n\nTensorAlias = torch.Tensor\n",
            "a.py",
        ),
        Section(
            "plugins/b",
            "import inspect, pickle, sys, typing\nLater = int\nAgain = Box\n"
            "class Lid:\n    pass\n\n"
            "def show():\n"
            "    print(inspect.getsource(Box).splitlines())\n"
            "    print(inspect.getsource(Lid).splitlines())\n"
            "    print(Box.__module__, Again.__module__, Lid.__module__, TensorAlias.__module__)\n"
            "    print(sys.modules[Box.__module__].Box is Box, type(pickle.loads(pickle.dumps(Box()))) is Box)\n"
            "    print(typing.get_type_hints(Box.size))\n",
            "b.py",
        ),
        Section("core/train", "show()\n", "t.py"),  # a class is read once its section has run, as main() does
    ]
    result = run_script(_wrapped(tmp_path, sections))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['class Box:', '    def size(self) -> Later:', '        return 3']",
        "['class Lid:', '    pass']",
        "<golfc:core/a> <golfc:core/a> <golfc:plugins/b> torch",
        "True True",
        "{'return': <class 'int'>}",
    ]


def test_main_guard_runs_in_the_wrapped_script(tmp_path):
    sections = [
        Section("core/train", "def main():\n    print('main ran')\n\nif __name__ == '__main__':\n    main()\n", "t.py")
    ]
    result = run_script(_wrapped(tmp_path, sections))
    assert result.stdout.strip() == "main ran"


def test_loader_names_stay_out_of_the_program_namespace(tmp_path):
    """The shipped loader binds nothing a section could see or lose: names such as _n or _L are the program's."""
    sections = [
        Section("plugins/clob", "_n = 4\n_L = 'mine'\n_G = 'g'\ndef clob_count():\n    return _n, _L, _G\n", "c.py"),
        Section("core/train", "print(clob_count())\n", "t.py"),
    ]
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import train_gpt as t\nprint(t.clob_count())\n"
        "print(sorted(n for n in vars(t) if n.startswith('_') and not n.startswith('__')))\n"
        "print(hasattr(t, '__golfc_load__'), hasattr(t, '_B'), len(t.__golfc_source__) > 0)\n"
    )
    _wrapped(tmp_path, sections)
    result = run_script(probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "(4, 'mine', 'g')",  # printed by the section while loading
        "(4, 'mine', 'g')",  # and after the loader has finished
        "['_G', '_L', '_n']",
        "False False True",
    ]


def test_sections_may_not_bind_the_loader_names():
    with pytest.raises(EmitError, match=r"'__golfc_source__' in <golfc:plugins/x> \(x.py\) is reserved"):
        check_unique_names([Section("plugins/x", "__golfc_source__ = ''\n", "x.py")])


def test_pinned_text_is_escaped_in_the_readable_docstring():
    from golfc.build import build_program
    from golfc.recipe import Recipe

    overrides = {"RUN_ID": 'a"""b', "DATA_PATH": "C:\\x\\data"}
    _, _, _, _, readable = build_program(Recipe(overrides=overrides))
    tree = ast.parse(readable)  # compiles: no unterminated string, no truncated \x escape
    assert "Pinned: DATA_PATH=C:\\x\\data, RUN_ID=a\"\"\"b." in ast.get_docstring(tree)
    assert "os.environ.get('RUN_ID', 'a\"\"\"b')" in readable
    plain = build_program(Recipe(overrides={"NUM_LAYERS": "11"}))[4]
    assert "Pinned: NUM_LAYERS=11.\n" in plain  # ordinary values are printed as they are


def test_a_build_whose_output_does_not_compile_is_an_internal_error(tmp_path, monkeypatch):
    import golfc.build
    from golfc.build import build_submission

    monkeypatch.setattr(golfc.build, "readable_program", lambda resolution, sections: '"""never closed\n')
    with pytest.raises(EmitError, match=r"^internal error: the emitted train_gpt.src.py does not compile \(line 1: "):
        build_submission((), {}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_class_of_the_shipped_baseline_is_readable_with_inspect(tmp_path):
    """In the kept baseline submission (equal to a fresh build), each class's source comes from its own section."""
    folder = Path(__file__).resolve().parents[1] / "submissions" / "2026-11-22_golfc_baseline"
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"import inspect, sys\nsys.path.insert(0, {str(folder)!r})\nimport train_gpt as t\n"
        "classes = {v for v in vars(t).values() if isinstance(v, type) and v.__module__.startswith('<golfc:')}\n"
        "for value in sorted(classes, key=lambda c: c.__name__):\n"
        "    first = inspect.getsource(value).splitlines()[0]\n"
        "    print(value.__module__, value.__name__, first.startswith(f'class {value.__name__}'))\n"
    )
    result = run_script(probe)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "<golfc:core/model> GPT True" in lines and "<golfc:plugins/muon> Muon True" in lines
    assert len(lines) >= 12 and all(line.endswith(" True") for line in lines)
