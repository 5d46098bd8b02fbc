"""The self-extracting ``train_gpt.py``: LZMA2 (raw format) + base85, one pseudo-file per section.

The payload is ``name\\x01source`` per section, joined by ``\\x00``. The loader registers each section in
``linecache`` under ``<golfc:NAME>`` before compiling it, so ``inspect.getsource``, ``@triton.jit`` and
tracebacks find the text. CPython's built-in traceback printer reads source files from disk and would
print no line for a pseudo-file, so the loader installs ``traceback.print_exception`` (which reads
``linecache``) as ``sys.excepthook``. ``__golfc_source__`` collects the sections for the run's log.
"""

from __future__ import annotations

import base64
import lzma

from golfc.emit.sections import Section

FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
FUTURE_ANNOTATIONS_FLAG = 0x1000000  # __future__.annotations.compiler_flag, applied to every section

LOADER = (
    "import lzma as _L,base64 as _B,linecache as _C,sys as _S,traceback as _T\n"
    "_G=globals();_G['__golfc_source__']='';_S.excepthook=lambda*a:_T.print_exception(*a)\n"
    "for _p in _L.decompress(_B.b85decode({payload!r}),format=_L.FORMAT_RAW,"
    "filters=[{{'id':_L.FILTER_LZMA2}}]).decode().split('\\0'):\n"
    " _n,_s=_p.split('\\1',1);_f='<golfc:'+_n+'>';_G['__golfc_source__']+='# '+_f+'\\n'+_s\n"
    " _C.cache[_f]=(len(_s),None,_s.splitlines(1),_f);exec(compile(_s,_f,'exec',{flag}),_G)\n"
)


def pack_payload(sections: list[Section]) -> str:
    """Sections -> the base85 text of their LZMA2-compressed concatenation (deterministic)."""
    for section in sections:
        if "\x00" in section.source or "\x01" in section.source or "\x01" in section.name:
            raise ValueError(f"section {section.name} contains a separator byte")
    raw = "\x00".join(f"{s.name}\x01{s.source}" for s in sections).encode("utf-8")
    return base64.b85encode(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=FILTERS)).decode("ascii")


def unpack_payload(payload: str) -> list[tuple[str, str]]:
    """Inverse of :func:`pack_payload` (used by tests and ``golfc size``)."""
    raw = lzma.decompress(base64.b85decode(payload), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return [tuple(part.split("\x01", 1)) for part in raw.decode("utf-8").split("\x00")]  # type: ignore[misc]


def wrap_sections(sections: list[Section]) -> str:
    """The text of the shipped ``train_gpt.py``."""
    return LOADER.format(payload=pack_payload(sections), flag=FUTURE_ANNOTATIONS_FLAG)
