"""The consoles every golfc command prints to, and the one way an error reaches the user: one `error:` line."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def one_line_message(exc: BaseException | str) -> str:
    """An error's message as one line, even when it quotes multi-line text from a library or a plugin."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def print_error(problem: BaseException | str) -> None:
    """``error: <message>`` on stderr, on one line; the message is printed as written (never read as markup)."""
    err_console.print(f"[bold red]error:[/] {escape(one_line_message(problem))}", highlight=False, soft_wrap=True)
