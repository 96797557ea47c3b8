"""What every `assistant` command module shares: the consoles, the typer app factory with the CLI's error
handling, config loading, the --domain option and the prepare report.

The command modules (cli_corpus, cli_data, cli_train, cli_eval, cli_router) import this; `assistant.cli` imports
them and assembles the command tree, so imports run one way only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

import assistant as api

# soft_wrap: no hard line breaks in long lines (paths, answers): terminals wrap, logs stay greppable
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Domain = Annotated[str, typer.Option("--domain", "-d", help="Domain to answer from (medical, finance, ...).")]


class ErrorGroup(TyperGroup):
    """Turns user errors into one line on stderr and exit code 2, and Ctrl-C into a resumable stop."""

    # ctx: typer's private copy of click's Context (typer._click), which no public name spells
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except api.AssistantError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            training = "train" in (ctx.info_name, ctx.invoked_subcommand)
            hint = "add --resume to continue from the last checkpoint" if training else "run the same command again to resume"
            err.print(f"interrupted: nothing is lost; {hint}")
            raise typer.Exit(130) from None


def typer_app(help_text: str) -> typer.Typer:
    """A command group with the CLI's error handling (see ErrorGroup)."""
    return typer.Typer(cls=ErrorGroup, help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)


def load_config() -> api.Config:
    """The configuration a command runs with (defaults + <home>/assistant.yaml)."""
    return api.load_config()


def print_prepare(report: Any) -> None:
    """A corpus's prepare report: its summary, then up to ten warnings."""
    out.print(report.summary(), highlight=False)
    for warning in report.warnings[:10]:
        err.print(f"  warning: {warning}", highlight=False)
    if len(report.warnings) > 10:
        err.print(f"  ... and {len(report.warnings) - 10} more warnings")
