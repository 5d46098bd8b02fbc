"""The ``golfc`` command line (typer + rich)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from golfc.errors import GolfcError

app = typer.Typer(
    name="golfc",
    help="Compose, build, verify and audit Parameter Golf submissions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _register_subcommands() -> None:
    from golfc.audit.command import audit
    from golfc.commands import build, demo, plugins, size
    from golfc.data.command import data_app

    app.command("build")(build)
    app.command("plugins")(plugins)
    app.command("size")(size)
    app.command("demo")(demo)
    app.command("audit")(audit)
    app.add_typer(data_app, name="data")


def main() -> None:
    """Entry point: run the app; a GolfcError becomes one line on stderr and exit code 2."""
    _register_subcommands()
    try:
        code = app(standalone_mode=False)  # click returns the code of a typer.Exit here instead of exiting
    except GolfcError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
