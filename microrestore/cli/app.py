"""The ``microrestore`` application and its entry point.

Exit status: 0 success, 2 bad input or usage, 1 any other failure. Errors print one readable line; ``--debug``
(anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from microrestore import __version__
from microrestore.cli import assess, evaluate, export, listing, restore, simulate, train, zoo
from microrestore.cli.common import cli_warnings, console, print_error
from microrestore.cli.flags import flags_without_type
from microrestore.errors import MicrorestoreError

HELP = """Deep-learning restoration of fluorescence microscopy images.

Restore with `denoise`, `deblur` or `restore`; train your own models with `train`; score results with
`evaluate` (against a ground truth) or `assess` and `compare` (without one); make test data with `simulate`;
try it all with `demo`. Methods come from plugins: see `microrestore methods` and `microrestore plugins`.
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"microrestore {__version__}")
        raise typer.Exit()


def build_app(*, with_plugins: bool = True) -> typer.Typer:
    """Build the typer application, adding the commands that plugins register."""
    app = typer.Typer(
        name="microrestore",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    ) -> None:
        """Deep-learning restoration of fluorescence microscopy images."""

    restore.add_commands(app)
    train.add_commands(app)
    evaluate.add_commands(app)
    assess.add_commands(app)
    simulate.add_commands(app)
    listing.add_commands(app)
    zoo.add_commands(app)
    export.add_commands(app)
    from microrestore.cli import demo

    demo.add_commands(app)
    if with_plugins:
        _add_plugin_commands(app)
    return app


def _add_plugin_commands(app: typer.Typer) -> None:
    from microrestore.plugins import get_host

    host = get_host()
    for name, command in host.registry.commands:
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name=name)(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (also the console-script entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MICRORESTORE_DEBUG", "") not in ("", "0")
    try:
        app = build_app()
        command = flags_without_type(typer.main.get_command(app))
        # Not command.main(): typer's main turns Ctrl-C into a returned 130 (with standalone_mode=False) that
        # looked like success; here KeyboardInterrupt reaches the handler below, and typer.Exit its own.
        with cli_warnings(), command.make_context("microrestore", args) as ctx:  # warnings as one line each
            command.invoke(ctx)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, EOFError):
        console.print("Aborted.")
        return 130
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        if debug:
            raise
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            print_error(_one_line(str(exc)))
        return int(getattr(exc, "exit_code", 2))
    except MicrorestoreError as exc:
        if debug:
            raise
        if not getattr(exc, "forwarded", False):  # another process of a torchrun job printed it already
            print_error(_one_line(str(exc)))
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except MemoryError:
        if debug:
            raise
        print_error("out of memory; try a smaller --tile or --batch-size")
        return 1
    except Exception as exc:
        if debug:
            raise
        print_error(f"{type(exc).__name__}: {_one_line(str(exc))} (run with --debug for details)")
        return 1
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status.

    A data-parallel rank leaves without interpreter shutdown (see :func:`microrestore.engine.ranks.exit_process`).
    """
    from microrestore.engine.ranks import exit_process

    exit_process(main())


if __name__ == "__main__":  # pragma: no cover
    run()
