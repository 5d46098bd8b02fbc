"""The packed-size cache (issue 17 sweep time): a re-audit of an unchanged script skips python-minifier, with the
same count; a changed script or ``GOLFC_AUDIT_CACHE=off`` minifies again."""

from __future__ import annotations

import golfc.audit.codesize as codesize

SOURCE = "def f(a, b):\n    '''doc'''\n    return a + b\n\nprint(f(1, 2))\n"


def test_second_count_of_the_same_source_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLFC_AUDIT_CACHE", str(tmp_path))
    first = codesize.packed_size(SOURCE)
    assert first is not None and list((tmp_path / "packed").iterdir())

    def refuse(source):
        raise AssertionError("minified again")

    monkeypatch.setattr(codesize, "_minified", refuse)
    assert codesize.packed_size(SOURCE) == first
    monkeypatch.setenv("GOLFC_AUDIT_CACHE", "off")
    try:
        codesize.packed_size(SOURCE)
    except AssertionError as exc:
        assert "minified again" in str(exc)
    else:
        raise AssertionError("the cache was used while off")


def test_changed_source_is_minified_again(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLFC_AUDIT_CACHE", str(tmp_path))
    codesize.packed_size(SOURCE)
    seen = []
    real = codesize._minified
    monkeypatch.setattr(codesize, "_minified", lambda source: seen.append(source) or real(source))
    assert codesize.packed_size(SOURCE + "print(3)\n") is not None and seen
