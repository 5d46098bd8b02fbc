"""The self-extracting ``train_gpt.py``: LZMA2 (raw format) + base85, one pseudo-file per section.

The payload is ``name\\x01source`` per section, joined by ``\\x00``. The loader registers each section in
``linecache`` under ``<golfc:NAME>`` before compiling it, so ``inspect.getsource``, ``@triton.jit`` and tracebacks
find the text. CPython's built-in traceback printer reads source files from disk and would print no line for a
pseudo-file, so the loader installs ``traceback.print_exception`` (which reads ``linecache``) as ``sys.excepthook``.
``__golfc_source__`` collects the sections for the run's log.

``inspect`` finds a function through its code's file name, which is the section's, but a class through its module's
``__file__``, which would be the wrapper. So once a section has run, the classes it defined move to a module named
after the section (``<golfc:NAME>`` in ``sys.modules``, ``__file__`` the same pseudo-file); the module's namespace
mirrors the program's, so pickle and ``typing.get_type_hints`` resolve through it. A class is readable once its
section has finished loading, which covers every class used by ``main()`` (the last section defines none).

The loader runs in a function and removes its own global names (the two import aliases, which stay at
module level so that ``golfc audit`` can read the payload statically, and the function) before the first
section runs: the program's namespace holds only what the sections define, as in ``train_gpt.src.py``.
"""

from __future__ import annotations

import base64
import lzma

from golfc.emit.sections import Section
from golfc.errors import EmitError

FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
FUTURE_ANNOTATIONS_FLAG = 0x1000000  # __future__.annotations.compiler_flag, applied to every section

LOADER = (
    "import lzma as _L,base64 as _B\n"
    "def __golfc_load__(G,parts):\n"
    " import linecache as C,sys as S,traceback as T,types as Y;M=[]\n"
    " del G['_L'],G['_B'],G['__golfc_load__'];G['__golfc_source__']='';S.excepthook=lambda*a:T.print_exception(*a)\n"
    " for p in parts:\n"
    "  n,s=p.split('\\1',1);f='<golfc:'+n+'>';G['__golfc_source__']+='# '+f+'\\n'+s;o={{id(v)for v in G.values()}}\n"
    "  C.cache[f]=(len(s),None,s.splitlines(1),f);exec(compile(s,f,'exec',{flag}),G)\n"
    "  c=[v for v in G.values()if isinstance(v,type)and id(v)not in o and v.__module__==G['__name__']]\n"
    "  if c:m=S.modules[f]=Y.ModuleType(f);m.__file__=f;M+=[m]\n"
    "  for v in c:v.__module__=f\n"
    "  for m in M:m.__dict__.update((k,v)for k,v in G.items()if k[:2]!='__')\n"
    "__golfc_load__(globals(),_L.decompress(_B.b85decode({payload!r}),format=_L.FORMAT_RAW,"
    "filters=[{{'id':_L.FILTER_LZMA2}}]).decode().split('\\0'))\n"
)


def pack_payload(sections: list[Section]) -> str:
    """Sections -> the base85 text of their LZMA2-compressed concatenation (deterministic)."""
    for section in sections:
        if "\x00" in section.source or "\x01" in section.source or "\x01" in section.name:
            raise EmitError(
                f"{section.origin} (section {section.filename}): contains a \\x00 or \\x01 character, which the "
                "self-extracting wrapper uses as a separator; write it as an escape in a string literal"
            )
    raw = "\x00".join(f"{s.name}\x01{s.source}" for s in sections).encode("utf-8")
    return base64.b85encode(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=FILTERS)).decode("ascii")


def unpack_payload(payload: str) -> list[tuple[str, str]]:
    """Inverse of :func:`pack_payload` (used by tests and ``golfc size``)."""
    raw = lzma.decompress(base64.b85decode(payload), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    return [tuple(part.split("\x01", 1)) for part in raw.decode("utf-8").split("\x00")]  # type: ignore[misc]


def wrap_sections(sections: list[Section]) -> str:
    """The text of the shipped ``train_gpt.py``."""
    return LOADER.format(payload=pack_payload(sections), flag=FUTURE_ANNOTATIONS_FLAG)
