"""The slot table of docs/ARCHITECTURE.md, generated from :data:`golfc.slots.SLOTS` (the one source of every
slot's contract): ``python -m golfc.slot_table`` prints it; tests/test_contracts.py checks that the document
holds it verbatim and that each hookspec's docstring agrees with its slot."""

from __future__ import annotations

import sys

from golfc.slots import SLOTS


def markdown_table() -> str:
    """One row per slot: what a reader calls it, hook, cardinality, wiring globals, default plugin, contract."""
    rows = [
        "| slot | hook | cardinality | wiring globals | default plugin | run-time contract |",
        "|---|---|---|---|---|---|",
    ]
    for slot in SLOTS:
        wiring = ", ".join(f"`{name}`" for name in slot.wiring)
        contract = slot.contract.replace("|", "\\|")
        rows.append(f"| {slot.title} | {slot.hook_name} | {slot.cardinality.value} | {wiring} | "
                    f"{slot.default or '—'} | {contract} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
