"""``shipyard db``: see and upgrade the schema revision of the metadata database."""

from __future__ import annotations

import click

from shipyard.cli._context import CliState, pass_state
from shipyard.cli._output import emit_json, json_option
from shipyard.errors import InvalidInput


@click.group()
def db() -> None:
    """Inspect and migrate the metadata database."""


@db.command("upgrade")
@json_option
@pass_state
def upgrade(state: CliState, as_json: bool) -> None:
    """Migrate the metadata database to the schema this version of Shipyard uses.

    Creates the tables in an empty database. Back up a database you care about first.
    """
    from shipyard.store import db as database
    from shipyard.store.schema import HEAD_REVISION

    url = _database_url(state)
    before = database.current_revision(url)
    database.upgrade(url)
    after = database.current_revision(url)
    if as_json:
        emit_json(
            {
                "database": database.display_url(url),
                "from_revision": before,
                "to_revision": after,
                "head_revision": HEAD_REVISION,
                "upgraded": before != after,
            }
        )
        return
    where = database.display_url(url)
    if before == after:
        click.echo(f"The database at {where} is already at revision {after}; nothing to do.")
    else:
        click.echo(f"Upgraded the database at {where} from {before or '(empty)'} to {after}.")


@db.command("current")
@json_option
@pass_state
def current(state: CliState, as_json: bool) -> None:
    """Show the database's schema revision and whether it needs `shipyard db upgrade`."""
    from shipyard.store import db as database
    from shipyard.store.schema import HEAD_REVISION

    url = _database_url(state)
    revision = database.current_revision(url)
    if as_json:
        emit_json(
            {
                "database": database.display_url(url),
                "revision": revision,
                "head_revision": HEAD_REVISION,
                "up_to_date": revision == HEAD_REVISION,
            }
        )
        return
    where = database.display_url(url)
    if revision == HEAD_REVISION:
        click.echo(f"{where}: revision {revision} (up to date).")
    elif revision is None:
        click.echo(
            f"{where}: no Shipyard tables yet. They are created on first use, "
            "or now with `shipyard db upgrade`."
        )
    else:
        click.echo(
            f"{where}: revision {revision}; this version of Shipyard uses {HEAD_REVISION}. "
            "Back it up, then run `shipyard db upgrade`."
        )


def _database_url(state: CliState) -> str:
    """The tracking URI, which must name a database (not a Shipyard server)."""
    settings = state.settings
    if settings.is_remote:
        raise InvalidInput(
            f"The tracking URI {settings.tracking_uri} is a Shipyard server, not a database. "
            "Run this command on the server's machine, or pass --tracking-uri with the "
            "database URL (sqlite:///... or postgresql://...)."
        )
    return settings.tracking_uri
