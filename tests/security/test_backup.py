"""`flask backup`: a consistent copy of the SQLite database that opens and holds the rows."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from portal import create_app
from portal.extensions import db
from portal.models import Organisation, User
from tests.conftest import base_config
from tests.security.world import build_world, password_hash, row_counts


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the SQLite backup API; PostgreSQL is backed up with pg_dump")
    return app


def test_backup_writes_a_copy_that_opens_and_has_every_row(sqlite_app, tmp_path):
    with sqlite_app.app_context():
        build_world()
        expected = row_counts()
    target = tmp_path / "copy.sqlite3"
    result = sqlite_app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert f"backup: {target}" in result.output
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        for table, count in expected.items():
            assert copy.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count, table
        assert copy.execute("SELECT title FROM ticket ORDER BY id").fetchone()[0] == "Front desk PC will not boot"
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        copy.close()
    assert (tmp_path / "copy.sqlite3.attachments" / "world-attachment-a.txt").read_bytes().startswith(b"event log")


def test_backup_refuses_to_overwrite_without_force(sqlite_app, tmp_path):
    target = tmp_path / "copy.sqlite3"
    target.write_bytes(b"yesterday's backup")
    runner = sqlite_app.test_cli_runner()
    refused = runner.invoke(args=["backup", str(target)])
    assert refused.exit_code != 0 and "already exists" in refused.output
    assert target.read_bytes() == b"yesterday's backup"
    assert runner.invoke(args=["backup", "--force", str(target)]).exit_code == 0
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_backup_taken_while_the_portal_writes_holds_only_whole_transactions(sqlite_app, tmp_path):
    """Each write adds an organisation and its admin in one transaction: a copy has equal numbers."""
    stop = threading.Event()
    written = []

    def writer() -> None:
        with sqlite_app.app_context():
            i = 0
            while not stop.is_set():
                org = Organisation(name=f"Org {i}", site_address="x")
                db.session.add_all([org, User(email=f"u{i}@org.example", role="client_admin", organisation=org,
                                              password_hash=password_hash())])
                db.session.commit()
                written.append(i)
                i += 1
            db.session.remove()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = []
        for n in range(3):
            while len(written) < 20 * (n + 1):
                stop.wait(0.01)
            target = tmp_path / f"live-{n}.sqlite3"
            result = sqlite_app.test_cli_runner().invoke(args=["backup", str(target)])
            assert result.exit_code == 0, result.output
            copies.append(target)
    finally:
        stop.set()
        thread.join()
    for target in copies:
        copy = sqlite3.connect(target)
        organisations = copy.execute("SELECT count(*) FROM organisation").fetchone()[0]
        users = copy.execute("SELECT count(*) FROM user_account").fetchone()[0]
        copy.close()
        assert organisations == users and organisations >= 20


def test_backup_on_postgresql_points_to_pg_dump_and_writes_nothing(tmp_path):
    app = create_app(base_config("postgresql+psycopg://portal:s3cret@127.0.0.1:1/portal"))
    target = tmp_path / "copy.dump"
    result = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code != 0
    assert "pg_dump --format=custom" in result.output and "s3cret" not in result.output
    assert not target.exists()
