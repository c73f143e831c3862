"""Prepared statements (memory/prepared.py) behave as SQLAlchemy's execution would, on
SQLite and PostgreSQL: JSON converted both ways, rows counted, errors raised as
SQLAlchemy's, the transaction kept, a forgotten value refused."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from openlam.memory.prepared import Prepared

PG = "postgresql+psycopg://127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def table(request, tmp_path):
    url = f"sqlite:///{tmp_path}/p.db" if request.param == "sqlite" else PG
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    t = sa.Table(
        f"prep_{uuid.uuid4().hex[:8]}",
        meta,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("data", sa.JSON),
    )
    meta.create_all(engine)
    yield engine, t
    meta.drop_all(engine)
    engine.dispose()


def test_insert_update_select_as_sqlalchemy_would(table):
    engine, t = table
    insert = Prepared(engine, sa.insert(t))
    bump = Prepared(
        engine,
        sa.update(t)
        .where(t.c.id == sa.bindparam("key"))
        .values(n=t.c.n + sa.bindparam("by"), data=sa.bindparam("data", type_=t.c.data.type)),
    )
    read = Prepared(engine, sa.select(t.c.n).where(t.c.id == sa.bindparam("key")))
    with engine.begin() as conn:
        insert.execute_many(conn, [{"id": "a", "n": 1, "data": {"x": [1, "y"]}}])
        assert bump.execute(conn, {"key": "a", "by": 2, "data": {"z": None}}) == 1
        assert bump.execute(conn, {"key": "nobody", "by": 2, "data": None}) == 0
        assert read.first(conn, {"key": "a"}) == (3,)
        assert read.first(conn, {"key": "nobody"}) is None
    with engine.connect() as conn:  # JSON went in as SQLAlchemy's JSON type writes it
        assert conn.execute(sa.select(t.c.data)).scalar_one() == {"z": None}


def test_a_failed_statement_raises_sqlalchemys_error_and_rolls_back(table):
    engine, t = table
    insert = Prepared(engine, sa.insert(t))
    row = {"id": "a", "n": 1, "data": None}
    with engine.begin() as conn:
        insert.execute(conn, row)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert.execute(conn, {**row, "id": "b"})
        insert.execute(conn, row)  # the primary key again
    with engine.connect() as conn:  # "b" went with the transaction
        assert conn.execute(sa.select(t.c.id)).scalars().all() == ["a"]


def test_a_forgotten_value_is_refused_not_written_as_null(table):
    engine, t = table
    insert = Prepared(engine, sa.insert(t))
    with engine.begin() as conn, pytest.raises(ValueError, match="no value given for data"):
        insert.execute(conn, {"id": "a", "n": 1})


def test_an_expanding_in_list_cannot_be_prepared(table):
    engine, t = table
    query = sa.select(t).where(t.c.id.in_(sa.bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        Prepared(engine, query)
