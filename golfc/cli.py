"""The ``golfc`` command line (typer + rich)."""

from __future__ import annotations

import importlib
import sys

import typer

from golfc import __version__
from golfc.console import err_console, print_error
from golfc.errors import GolfcError

app = typer.Typer(
    name="golfc",
    help="Compose, build and audit Parameter Golf submissions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    """``golfc --version``: the version on stdout, then exit 0."""
    if value:
        typer.echo(f"golfc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print golfc's version and exit."
    ),
) -> None:
    """Compose, build and audit Parameter Golf submissions."""


def _hide_flag_types() -> None:
    """Typer's rich help prints a ``<bool>`` type column after every flag (``--force <bool>``); a flag takes no
    value, so show none. Typer releases without ``TyperOption.display_type_rich`` print none already."""
    option = getattr(importlib.import_module("typer.core"), "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(shown, "_golfc_hides_flags", False):
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: object) -> str | None:
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich._golfc_hides_flags = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


def _register_subcommands() -> None:
    from golfc.audit.command import audit
    from golfc.commands import build, demo, plugins, size
    from golfc.data.command import data_app
    from golfc.verify.command import verify
    from golfc.verify.pr import pr

    app.command("build")(build)
    app.command("plugins")(plugins)
    app.command("size")(size)
    app.command("demo")(demo)
    app.command("audit")(audit)
    app.command("verify")(verify)
    app.command("pr")(pr)
    app.add_typer(data_app, name="data")


def _click_usage_errors() -> tuple[type[Exception], ...]:
    """Usage-error classes of click and of the copy of click that newer typer releases vendor."""
    kinds: list[type[Exception]] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            kinds.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(kinds)


def main() -> None:
    """Entry point: run the app; a GolfcError becomes one line on stderr and exit code 2."""
    _hide_flag_types()
    _register_subcommands()
    try:
        code = app(standalone_mode=False)  # click returns the code of a typer.Exit here instead of exiting
    except GolfcError as exc:
        print_error(exc)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except _click_usage_errors() as exc:  # a missing argument, an unknown option: click's usage message
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
