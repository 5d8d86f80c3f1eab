"""Backups: a consistent copy of the portal's SQLite database (and its attachments).

Why the SQLite backup API and not a file copy: copying the file while a worker writes can
capture half a transaction (and misses pages still in the WAL); the backup API copies a single
consistent snapshot page by page while the portal keeps running.

PostgreSQL is backed up with its own tool, pg_dump, which takes a consistent snapshot in one
transaction; `flask backup` prints the command instead of pretending to do it.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import Engine, make_url


class BackupError(Exception):
    """The backup was not written; the message says why and what to do instead."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    rows: dict[str, int]
    attachments_path: Optional[Path]
    attachments_copied: int


def pg_dump_command(url: str, destination: Path) -> str:
    """The pg_dump command line for a PostgreSQL DATABASE_URL (password hidden)."""
    plain = make_url(url).set(drivername="postgresql")
    return (f"pg_dump --format=custom --file={destination} "
            f"\"{plain.render_as_string(hide_password=True)}\"")


def backup_database(engine: Engine, destination: Path, upload_folder: Optional[str] = None,
                    overwrite: bool = False) -> BackupResult:
    """Write a consistent copy of the SQLite database to `destination`, then the attachments beside it.

    The database is copied first, so every attachment row in the copy has its file by the time
    the files are copied (files are written before their row is committed and never changed).
    """
    if engine.dialect.name != "sqlite":
        raise BackupError(
            "This database is PostgreSQL: back it up with pg_dump (see docs/DEPLOY.md, Backups):\n  "
            + pg_dump_command(engine.url.render_as_string(hide_password=False), destination)
        )
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} already exists; choose another path or pass --force.")
    if not destination.parent.is_dir():
        raise BackupError(f"The folder {destination.parent} does not exist.")
    partial = destination.with_name(destination.name + ".partial")
    if partial.exists():
        partial.unlink()

    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            problem = target.execute("PRAGMA integrity_check").fetchone()[0]
            if problem != "ok":
                raise BackupError(f"The copy failed its integrity check: {problem}")
            tables = [name for (name,) in target.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            rows = {name: target.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
        finally:
            target.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        raw.close()
    os.replace(partial, destination)

    attachments_path, copied = None, 0
    if upload_folder and Path(upload_folder).is_dir():
        attachments_path = destination.with_name(destination.name + ".attachments")
        attachments_path.mkdir(exist_ok=True)
        for item in Path(upload_folder).iterdir():
            if item.is_file() and not (attachments_path / item.name).exists():
                shutil.copy2(item, attachments_path / item.name)
                copied += 1
    return BackupResult(path=destination, size_bytes=destination.stat().st_size, rows=rows,
                        attachments_path=attachments_path, attachments_copied=copied)
