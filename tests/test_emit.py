"""The emitter's passes: import stripping, name checks, minification guard, the self-extracting wrapper."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    assert len(text.splitlines()) == 5


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


def test_main_guard_runs_in_the_wrapped_script(tmp_path):
    sections = [
        Section("core/train", "def main():\n    print('main ran')\n\nif __name__ == '__main__':\n    main()\n", "t.py")
    ]
    result = run_script(_wrapped(tmp_path, sections))
    assert result.stdout.strip() == "main ran"
