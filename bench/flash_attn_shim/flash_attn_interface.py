"""FlashAttention-3's `flash_attn_interface` for the records' own scripts on a machine without FA3 (the device has
none): put this folder first on PYTHONPATH. A thin re-export: the implementation is golfc/flash_attn_stand_in.py
(the one stand-in, also golfc's test double for flash-attn), run here as this module. It needs torch only, not golfc
installed. Its defaults hold: flash_attn_func returns the output only, as FA3 does, and records nothing."""

from pathlib import Path

_IMPLEMENTATION = Path(__file__).resolve().parents[2] / "golfc" / "flash_attn_stand_in.py"
exec(compile(_IMPLEMENTATION.read_text(encoding="utf-8"), str(_IMPLEMENTATION), "exec"))
