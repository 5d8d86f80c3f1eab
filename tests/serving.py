"""Serve the real portal with gunicorn on loopback for the browser journeys, the scale-out test and the load benchmark.

Why a real server: these checks are about what a browser, a second node or a load generator
sees over HTTP, with the production gunicorn.conf.py, not about the Flask test client.
The database is built the way an operator builds it: `flask db upgrade`, then `flask seed-demo`.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sibling_database(url: str, suffix: str) -> str:
    """A PostgreSQL database beside the suite's own (test_8 -> test_8_e2e): the suite empties its
    tables after every test, which must not happen under a server that is still serving."""
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{suffix}").render_as_string(hide_password=False)


def fresh_database(url: str) -> None:
    """Start from nothing: drop and re-create the PostgreSQL database, or delete the SQLite file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            candidate.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
            ), {"name": parsed.database})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def portal_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a served portal: development mode over plain HTTP on loopback, no SMTP, no Stripe."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SMTP_", "REDIS_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        FLASK_APP="app",
        PORTAL_ENV="development",
        SECRET_KEY="served-portal-test-key",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def flask_command(args: list[str], env: Mapping[str, str], timeout: float = 300) -> str:
    result = subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=dict(env), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def build_database(env: Mapping[str, str], seed: bool = True) -> None:
    fresh_database(env["DATABASE_URL"])
    flask_command(["db", "upgrade"], env)
    if seed:
        flask_command(["seed-demo"], env)


class Server:
    """One gunicorn node: its base URL, its log file, and the process."""

    def __init__(self, process: subprocess.Popen, base_url: str, log_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log_path = log_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not become ready:\n{server.log_tail()}")


@contextmanager
def gunicorn(env: Mapping[str, str], log_path: Path, workers: int = 2, threads: int = 4,
             port: Optional[int] = None, access_log: bool = False) -> Iterator[Server]:
    """Run `gunicorn -c gunicorn.conf.py app:app` on 127.0.0.1 until the block ends."""
    port = port or free_port()
    run_env = dict(env)
    run_env.update(WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=str(threads),
                   GUNICORN_BIND=f"127.0.0.1:{port}",
                   GUNICORN_ACCESS_LOG="-" if access_log else "/dev/null")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"], cwd=ROOT,
                               env=run_env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(server, time.monotonic() + 60)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def chromium_path() -> Optional[str]:
    """Debian's chromium; the browser journeys drive it through Playwright."""
    path = "/usr/bin/chromium"
    return path if os.path.exists(path) else shutil.which("chromium")
