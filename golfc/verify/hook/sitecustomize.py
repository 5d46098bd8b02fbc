"""golfc verify's data-access ledger, loaded by every Python process of a verified run.

``golfc verify`` puts this folder first on the children's ``PYTHONPATH``; Python imports ``sitecustomize`` at
start-up, so the hook is in place before the submission's first line runs. It adds an audit hook
(``sys.addaudithook``, PEP 578) that appends one JSON line per opened data file to
``$GOLFC_LEDGER_DIR/ledger.<pid>.jsonl``: the wall-clock time, pid, rank, path and mode. ``open()``,
``io.open``, ``os.open``, ``numpy.fromfile`` and ``numpy.memmap`` all raise the ``open`` audit event
(tests/verify/test_ledger.py shows each). A file counts as data when it lies under one of the folders of
``$GOLFC_LEDGER_WATCH`` (os.pathsep-separated) or is named like a challenge shard (``fineweb_*``).

Standard library only; nothing happens when ``GOLFC_LEDGER_DIR`` is unset. A ``sitecustomize`` that this one
shadows (a virtual environment's, say) is still run afterwards.
"""

import json
import os
import sys
import time


def _install():
    out = os.environ.get("GOLFC_LEDGER_DIR")
    if not out:
        return
    roots = []
    for entry in os.environ.get("GOLFC_LEDGER_WATCH", "").split(os.pathsep):
        if entry:
            for root in {os.path.abspath(entry), os.path.realpath(entry)}:
                roots.append(root.rstrip(os.sep) + os.sep)
    roots = tuple(roots)
    pid = os.getpid()
    rank = os.environ.get("RANK")
    fd = os.open(os.path.join(out, f"ledger.{pid}.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    write, dumps, now, abspath, basename = os.write, json.dumps, time.time, os.path.abspath, os.path.basename

    def ledger_hook(event, args):
        if event != "open":
            return
        path = args[0]
        if isinstance(path, int):  # os.fdopen / open(fd): the path was seen when the fd was opened
            return
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            try:
                path = os.fspath(path)
            except TypeError:
                return
        full = abspath(path)
        if not (full.startswith(roots) or basename(full).startswith("fineweb_")):
            return
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else None
        line = dumps({"t": now(), "pid": pid, "rank": rank, "path": full, "mode": mode, "flags": flags})
        write(fd, (line + "\n").encode())

    sys.addaudithook(ledger_hook)


def _chain():
    """Run the ``sitecustomize`` this one shadows, if any (found on sys.path after this folder)."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or os.path.abspath(spec.origin or "") == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_install()
_chain()
