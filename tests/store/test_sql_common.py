"""``driver_execute``: the logging hot path's statements on the bare DBAPI cursor fail exactly as
``exec_driver_sql`` would, a lost connection included."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.store._sql_common import driver_execute


def test_a_driver_error_is_sqlalchemys_wrapped_exception(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        driver_execute(conn, "INSERT INTO t VALUES (?)", [(1,), (2,)], many=True)
        with pytest.raises(sa_exc.IntegrityError) as caught:
            driver_execute(conn, "INSERT INTO t VALUES (?)", [(3,), (1,)], many=True)
        assert caught.value.statement == "INSERT INTO t VALUES (?)"
        assert caught.value.connection_invalidated is False
        assert not conn.invalidated
        rows = driver_execute(conn, "SELECT k FROM t ORDER BY k", ()).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]  # sqlite keeps the rows before the failing one
    engine.dispose()


@pytest.mark.postgres
def test_a_lost_connection_is_invalidated_and_said_so(postgres_uri: str) -> None:
    engine = sa.create_engine(postgres_uri)
    admin = sa.create_engine(postgres_uri, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(sa_exc.DBAPIError) as caught:
                driver_execute(conn, "SELECT 1", ())
            assert caught.value.connection_invalidated is True
            assert conn.invalidated
        with engine.connect() as conn:  # the pool hands out a working connection again
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()
