"""The migrations and the models must describe the same schema."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Config

from portal.extensions import db


def test_models_and_migrations_agree(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models differ from the migrations: {diff}"


def test_single_migration_head(app):
    config = Config(app.extensions["migrate"].directory + "/alembic.ini")
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


# --- every migration goes down and up again cleanly (on SQLite and on PostgreSQL) ------------------


def _scratch_database_url(database_url: str, tmp_path) -> str:
    """A database of its own, so walking the migrations never touches the suite's schema.

    SQLite: a new file. PostgreSQL: a scratch schema in the same database (search_path).
    """
    if not database_url.startswith("postgresql"):
        return "sqlite:///" + str(tmp_path / "migrations.sqlite3")
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        connection.execute(text("CREATE SCHEMA migration_check"))
    engine.dispose()
    separator = "&" if "?" in database_url else "?"
    return database_url + separator + "options=-csearch_path%3Dmigration_check"


def test_every_migration_downgrades_and_upgrades_cleanly(database_url, tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect

    from portal import create_app
    from tests.conftest import base_config

    app = create_app(base_config(_scratch_database_url(database_url, tmp_path)))
    with app.app_context():
        config = Config(app.extensions["migrate"].directory + "/alembic.ini")
        config.set_main_option("script_location", app.extensions["migrate"].directory)
        revisions = list(ScriptDirectory.from_config(config).walk_revisions())
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT current_schema()").scalar() == "migration_check"
        upgrade()
        steps = 0
        while True:
            with db.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
            if current is None:
                break
            downgrade(revision="-1")
            steps += 1
        assert steps == len(revisions)
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}, "downgrade to base left tables"
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        db.session.remove()
        db.engine.dispose()
    if database_url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        engine.dispose()
