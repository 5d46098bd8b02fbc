"""``golfc build``: recipe -> train_gpt.py (self-extracting), train_gpt.src.py (readable), golfc.lock."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from golfc import __version__
from golfc.emit.minify import minify_sections
from golfc.emit.render import readable_program, render_hparams, render_wiring
from golfc.emit.sections import Section, check_unique_names, core_section, module_file, section_from_file
from golfc.emit.wrap import wrap_sections
from golfc.engine import Resolution, resolve
from golfc.recipe import Recipe

SIZE_LIMIT = 16_000_000
CORE_BEFORE_PLUGINS = ("prelude", "hparams", "data", "model")
CORE_AFTER_WIRING = ("train",)


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote and how large each part is."""

    out_dir: Path
    resolution: Resolution
    sections: list[Section]  # as shipped (minified when asked)
    readable_sections: list[Section]
    wrapped: str
    readable: str
    lock: dict

    @property
    def wrapped_bytes(self) -> int:
        return len(self.wrapped.encode("utf-8"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plugin_section_name(plugin: str, module: str) -> str:
    """``plugins/<folder>`` for a plugin's main run-time module, ``plugins/<folder>/<stem>`` for others."""
    parts = module.split(".")
    if parts[0] == "golfc_plugins" and len(parts) >= 3:
        folder, stem = parts[1], parts[-1]
    else:
        folder, stem = plugin, parts[-1]
    return f"plugins/{folder}" if stem in ("runtime", f"{folder}_runtime") else f"plugins/{folder}/{stem}"


def assemble_sections(resolution: Resolution) -> list[Section]:
    """Core sections, generated sections and plugin sections in program order."""
    sections: list[Section] = []
    for stem in CORE_BEFORE_PLUGINS:
        if stem == "hparams":
            sections.append(Section("hparams", render_hparams(resolution.hparams.all()), "generated"))
        else:
            sections.append(core_section(stem))
    for plugin, module in resolution.runtime_modules():
        sections.append(section_from_file(plugin_section_name(plugin, module), module_file(module)))
    sections.append(Section("wiring", render_wiring(resolution), "generated"))
    sections.extend(core_section(stem) for stem in CORE_AFTER_WIRING)
    check_unique_names(sections)
    return sections


def make_lock(resolution: Resolution, sections: list[Section], wrapped: str, readable: str) -> dict:
    return {
        "golfc_version": __version__,
        "plugins": list(resolution.recipe.plugins),
        "active": list(resolution.active),
        "overrides": dict(sorted(resolution.recipe.overrides.items())),
        "hparams": {p.name: p.default for p in resolution.hparams.all()},
        "minify": resolution.recipe.minify,
        "sections": [
            {
                "name": s.name,
                "origin": s.origin,
                "bytes": len(s.source.encode("utf-8")),
                "sha256": sha256_text(s.source),
            }
            for s in sections
        ],
        "files": {
            "train_gpt.py": {"bytes": len(wrapped.encode("utf-8")), "sha256": sha256_text(wrapped)},
            "train_gpt.src.py": {"bytes": len(readable.encode("utf-8")), "sha256": sha256_text(readable)},
        },
    }


def build_program(
    recipe: Recipe, plugins_dir: Path | None = None
) -> tuple[Resolution, list[Section], list[Section], str, str]:
    """Resolve and assemble without writing: (resolution, shipped sections, readable sections, wrapped, readable)."""
    resolution = resolve(recipe, plugins_dir)
    readable_sections = assemble_sections(resolution)
    shipped = minify_sections(readable_sections) if recipe.minify else readable_sections
    return (
        resolution,
        shipped,
        readable_sections,
        wrap_sections(shipped),
        readable_program(resolution, readable_sections),
    )


def build_submission(
    plugins: tuple[str, ...] = (),
    overrides: dict[str, str] | None = None,
    out_dir: Path = Path("golfc-build"),
    minify: bool = False,
    plugins_dir: Path | None = None,
) -> BuildResult:
    """Build a recipe into ``out_dir``; identical inputs give byte-identical files."""
    recipe = Recipe(plugins=tuple(plugins), overrides=dict(overrides or {}), minify=minify)
    resolution, shipped, readable_sections, wrapped, readable = build_program(recipe, plugins_dir)
    lock = make_lock(resolution, shipped, wrapped, readable)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_gpt.py").write_text(wrapped, encoding="utf-8")
    (out_dir / "train_gpt.src.py").write_text(readable, encoding="utf-8")
    (out_dir / "golfc.lock").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return BuildResult(out_dir, resolution, shipped, readable_sections, wrapped, readable, lock)
