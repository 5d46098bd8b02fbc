"""``golfc build``: recipe -> train_gpt.py (self-extracting), train_gpt.src.py (readable), golfc.lock."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from golfc import __version__
from golfc.emit.minify import minify_sections
from golfc.emit.render import readable_program, render_hparams, render_wiring
from golfc.emit.sections import (
    Section,
    check_unique_names,
    core_section,
    module_file,
    parsed,
    section_from_file,
    top_level_names,
)
from golfc.emit.wrap import wrap_sections
from golfc.engine import Resolution, resolve
from golfc.errors import EmitError, OutputError
from golfc.outputs import StagedFiles, check_output_root
from golfc.recipe import Recipe

SIZE_LIMIT = 16_000_000
OUTPUT_FILES = ("train_gpt.py", "train_gpt.src.py", "golfc.lock")
OUT_OPTION = "--out"  # how `golfc build` (and `golfc demo`) name their output folder in messages
CORE_BEFORE_PLUGINS = ("prelude", "checks", "hparams", "data", "model")
CORE_AFTER_WIRING = ("probe", "train")


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
            hparams = render_hparams(resolution.hparams.all(), resolution.hparams.rules())
            sections.append(Section("hparams", hparams, "generated"))
        else:
            sections.append(core_section(stem))
    by_module = {
        module: section_from_file(plugin_section_name(plugin, module), module_file(module))
        for plugin, module in resolution.runtime_modules()
    }
    check_impl_symbols(resolution, by_module)
    sections.extend(by_module.values())
    sections.append(Section("wiring", render_wiring(resolution), "generated"))
    sections.extend(core_section(stem) for stem in CORE_AFTER_WIRING)
    check_unique_names(sections)
    return sections


def names_bound_at_top_level(source: str) -> set[str]:
    """Top-level def, class and assignment names of a section, plus the names its kept imports bind."""
    names = top_level_names(source)
    for node in parsed(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
    return names


def check_impl_symbols(resolution: Resolution, by_module: dict[str, Section]) -> None:
    """Every symbol an Impl binds must be a top-level name of its run-time module (or of one it requires):
    the wiring block would otherwise fail with a NameError when train_gpt.py starts."""
    for bindings in resolution.bindings.values():
        for binding in bindings:
            modules = (binding.impl.module, *binding.impl.requires)
            available = set().union(*(names_bound_at_top_level(by_module[m].source) for m in modules))
            for symbol in binding.symbols.values():
                if symbol not in available:
                    raise EmitError(
                        f"plugin {binding.plugin}: Impl symbol {symbol!r} is not a top-level name of run-time "
                        f"module {binding.impl.module} (expected a def, class or assignment there)"
                    )


def check_compiles(text: str, filename: str) -> None:
    """Refuse to ship a file that Python cannot compile: that is a golfc bug, not a user's."""
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        problem = f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # a NUL character
        problem = str(exc)
    else:
        return
    raise EmitError(f"internal error: the emitted {filename} does not compile ({problem}); please report this")


def make_lock(resolution: Resolution, sections: list[Section], wrapped: str, readable: str) -> dict:
    return {
        "golfc_version": __version__,
        "plugins": list(resolution.requested),
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
    wrapped, readable = wrap_sections(shipped), readable_program(resolution, readable_sections)
    check_compiles(readable, "train_gpt.src.py")
    check_compiles(wrapped, "train_gpt.py")
    return resolution, shipped, readable_sections, wrapped, readable


def lock_text(lock: dict) -> str:
    try:
        return json.dumps(lock, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError as exc:  # nan or inf: hparams refuses them, so this is a golfc bug
        raise EmitError(f"internal error: golfc.lock would not be valid JSON ({exc}); please report this") from None


def prepare_out_dir(out_dir: Path, option: str = OUT_OPTION) -> None:
    """Create the output folder; refuse, in one line, a path golfc cannot make a folder of or write into."""
    check_output_root(out_dir, option)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {out_dir}: cannot create the folder ({exc.strerror or exc})") from None


def write_outputs(out_dir: Path, texts: dict[str, str], option: str = OUT_OPTION) -> None:
    """Write every file into a staging folder inside ``out_dir``, then install them all or none: a failed write
    or rename leaves the previous build exactly as it was, and no staging folder behind."""
    staging = StagedFiles()
    try:
        _stage_texts(staging, out_dir, texts, option)
        staging.commit()
    finally:
        staging.discard()


def _stage_texts(staging: StagedFiles, out_dir: Path, texts: dict[str, str], option: str) -> None:
    """Write each text under its staging name; a failure names the file and the folder it was going to."""
    for name, text in texts.items():
        try:
            staging.path_for(out_dir / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{option} {out_dir}: cannot write {name} ({exc.strerror or exc})") from None


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
    texts = dict(zip(OUTPUT_FILES, (wrapped, readable, lock_text(lock))))
    prepare_out_dir(out_dir)
    write_outputs(out_dir, texts)
    return BuildResult(out_dir, resolution, shipped, readable_sections, wrapped, readable, lock)
