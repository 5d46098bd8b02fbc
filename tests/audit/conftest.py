"""Shared fixtures of the audit tests: test data paths and wrappers of every kind around a source text."""

from __future__ import annotations

import base64
import bz2
import lzma
import zlib
from collections.abc import Callable
from pathlib import Path

import brotli
import pytest
import zstandard

DATA = Path(__file__).parent / "data"
RECORDS = DATA / "records"
SCRIPTS = DATA / "scripts"


SOURCE = "import os\n\n\ndef main():\n    return os.getcwd()\n"  # a small script the unwrapper tests wrap


def write(tmp_path: Path, text: str) -> Path:
    """``text`` as ``tmp_path/train_gpt.py``, the file the unwrapper reads."""
    path = tmp_path / "train_gpt.py"
    path.write_text(text, encoding="utf-8")
    return path


def b85_lzma(text: str) -> str:
    """The payload of the commonest wrapper: LZMA (xz) then base85."""
    return base64.b85encode(lzma.compress(text.encode())).decode()


def wrap_golfc_sections(sections: dict[str, str]) -> str:
    """golfc's layout: LZMA2 raw + base85, sections ``name\\x01source`` joined by ``\\x00``, exec'd one by one."""
    raw = "\x00".join(f"{name}\x01{source}" for name, source in sections.items()).encode()
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9}]
    payload = base64.b85encode(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=filters)).decode()
    return (
        "import lzma as L,base64 as B,linecache as C\n"
        "G=globals()\n"
        f"for p in L.decompress(B.b85decode({payload!r}),format=L.FORMAT_RAW,"
        "filters=[{'id':L.FILTER_LZMA2}]).decode().split('\\0'):\n"
        " n,s=p.split('\\1',1);f='<golfc:'+n+'>'\n"
        " C.cache[f]=(len(s),None,s.splitlines(1),f);exec(compile(s,f,'exec'),G)\n"
    )


def _lzma_raw_b85(source: str) -> str:
    return wrap_golfc_sections({"main": source})


def _lzma_xz_b64(source: str) -> str:
    payload = base64.b64encode(lzma.compress(source.encode())).decode()
    return f"import lzma, base64\nexec(lzma.decompress(base64.b64decode('{payload}')).decode())\n"


def _zlib_b64(source: str) -> str:
    payload = base64.b64encode(zlib.compress(source.encode(), 9)).decode()
    return f"import zlib as Z\nimport base64\nexec(compile(Z.decompress(base64.b64decode({payload!r})), 'train', 'exec'))\n"


def _brotli_b85_variable(source: str) -> str:
    payload = base64.b85encode(brotli.compress(source.encode())).decode()
    return f"import brotli, base64\nBLOB = {payload!r}\nexec(brotli.decompress(base64.b85decode(BLOB)))\n"


def _zstd_bz2_bytes(source: str) -> str:
    payload = zstandard.ZstdCompressor().compress(bz2.compress(source.encode()))
    return f"import bz2, zstandard as zs\nexec(bz2.decompress(zs.ZstdDecompressor().decompress({payload!r})))\n"


def _nested_exec(source: str) -> str:
    """Two layers: brotli+base85 around a zlib+base64 wrapper."""
    return _brotli_b85_variable(_zlib_b64(source))


WRAPPERS: dict[str, Callable[[str], str]] = {
    "lzma_raw_b85_sections": _lzma_raw_b85,
    "lzma_xz_b64": _lzma_xz_b64,
    "zlib_b64_compile": _zlib_b64,
    "brotli_b85_variable": _brotli_b85_variable,
    "zstd_bz2_bytes": _zstd_bz2_bytes,
    "nested_brotli_zlib": _nested_exec,
}


@pytest.fixture(params=sorted(WRAPPERS))
def wrapper(request: pytest.FixtureRequest) -> Callable[[str], str]:
    return WRAPPERS[request.param]


@pytest.fixture
def wrappers() -> dict[str, Callable[[str], str]]:
    return WRAPPERS


@pytest.fixture
def golfc_wrap() -> Callable[[dict[str, str]], str]:
    return wrap_golfc_sections
