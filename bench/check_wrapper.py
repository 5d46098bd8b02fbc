"""Check the self-extracting wrapper on a GPU machine: @triton.jit and torch.compile inside sections,
and a traceback that names the section and prints the source line (Python 3.12's default hook does not).

Usage: python bench/check_wrapper.py   (prints PASS/FAIL lines; exit 1 on any failure)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from golfc.emit.sections import Section
from golfc.emit.wrap import wrap_sections

KERNEL = """
import torch
import triton
import triton.language as tl


@triton.jit
def add_one_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1.0, mask=mask)


@torch.compile
def softcap(x):
    return 30.0 * torch.tanh(x / 30.0)
"""
MAIN = """
x = torch.zeros(1000, device="cuda")
add_one_kernel[(4,)](x, 1000, BLOCK=256)
print("triton", float(x.sum()))
print("compile", float(softcap(torch.full((4,), 60.0, device="cuda")).sum()))


def explode():
    raise RuntimeError("from a section")


explode()
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train_gpt.py"
        script.write_text(
            wrap_sections([Section("plugins/kernel", KERNEL, "k.py"), Section("core/train", MAIN, "t.py")])
        )
        result = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=300)
    checks = {
        "triton kernel ran from a section": "triton 1000.0" in result.stdout,
        "torch.compile ran from a section": "compile " in result.stdout,
        "traceback names the section": 'File "<golfc:core/train>", line 9, in explode' in result.stderr,
        "traceback prints the source line": 'raise RuntimeError("from a section")' in result.stderr,
    }
    print(f"python {sys.version.split()[0]}")
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    if not all(checks.values()):
        print(result.stdout[-2000:], result.stderr[-3000:])
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
