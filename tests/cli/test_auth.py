"""``shipyard auth`` and ``shipyard backup`` / ``restore`` on an embedded workspace."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Shipyard


def test_users_tokens_grants_and_audit(shipyard: Shipyard) -> None:
    created = shipyard.json(
        "auth", "users", "create", "ana", "--password-stdin", input="long-password\n"
    )
    assert created["username"] == "ana"
    assert created["has_password"] is True
    assert [u["username"] for u in shipyard.json("auth", "users", "list")] == ["ana"]

    result = shipyard("auth", "grants", "set", "ana", "editor", "--experiment", "0")
    assert result.stdout.strip() == "Granted editor on experiment:0 to ana"
    grants = shipyard.json("auth", "grants", "list", "--user", "ana")
    assert [(g["scope"], g["role"]) for g in grants] == [("experiment:0", "editor")]

    token = shipyard.json(
        "auth", "tokens", "create", "ana", "--name", "ci", "--expires-in-days", "7"
    )
    assert token["secret"].startswith("shp_")
    assert token["token"]["expiry_time"] is not None
    listed = shipyard("auth", "tokens", "list")
    assert token["token"]["token_id"] in listed.stdout
    assert token["secret"] not in listed.stdout  # secrets are shown once, at creation
    shipyard("auth", "tokens", "revoke", token["token"]["token_id"])
    assert "revoked" in shipyard("auth", "tokens", "list").stdout

    shipyard("auth", "grants", "revoke", "ana", "--experiment", "0")
    actions = [e["action"] for e in shipyard.json("auth", "audit")]
    assert actions[:5] == [
        "grant.revoked",
        "token.revoked",
        "token.created",
        "grant.set",
        "user.created",
    ]
    assert all(e["actor"].startswith("cli") for e in shipyard.json("auth", "audit"))


def test_mistakes_are_one_line(shipyard: Shipyard) -> None:
    assert shipyard.fails("auth", "grants", "set", "nobody", "reader").startswith(
        "Error: No user is named 'nobody'"
    )
    shipyard("auth", "users", "create", "bo", "--no-password")
    result = shipyard(
        "auth", "users", "set-password", "bo", "--password-stdin", input="short\n", expect=1
    )
    assert "use at least 8" in result.stderr
    assert "Unknown scope" in shipyard.fails(
        "auth", "grants", "set", "bo", "reader", "--scope", "run:1"
    )
    shipyard("auth", "grants", "set", "bo", "owner", expect=2)  # not a role: a usage error


def test_backup_and_restore_round_trip(shipyard: Shipyard, tmp_path: Path) -> None:
    shipyard("experiments", "create", "kept")
    shipyard("auth", "users", "create", "cy", "--no-password")
    out = shipyard("backup", str(tmp_path / "bk")).stdout
    assert out.startswith("Backed up sqlite metadata")
    other = Shipyard(tmp_path / "other-home")
    restored = other.json("restore", str(tmp_path / "bk"))
    assert restored["backend"] == "sqlite"
    assert "kept" in other("experiments", "list").stdout
    assert [u["username"] for u in other.json("auth", "users", "list")] == ["cy"]
    assert "not empty" in shipyard.fails("backup", str(tmp_path / "bk"))
    assert "empty workspace" in other.fails("restore", str(tmp_path / "bk"))
