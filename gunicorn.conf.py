"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py app:app` (see docs/DEPLOY.md).

Every number can be changed through the environment without editing this file:
WEB_CONCURRENCY (worker processes), GUNICORN_THREADS (threads per worker), GUNICORN_BIND,
GUNICORN_TIMEOUT, FORWARDED_ALLOW_IPS. Each worker process keeps its own SQLAlchemy pool,
sized in portal/config.py from GUNICORN_THREADS, so the database sees at most
workers x (threads + DB_MAX_OVERFLOW) connections.
"""
from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Workers from the core count: two per core plus one keeps a core busy while another worker
# waits on PostgreSQL. Threads let one worker overlap several slow requests (the app is I/O bound).
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:" + os.environ.get("PORT", "8000"))

# A request taking longer than this is a bug or a stuck connection: the worker is replaced.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so a slow leak can never take a node down; jitter avoids all at once.
# Not too often: a new worker spends a second of CPU importing, and starts with an empty pool and
# no kept pages (portal/page_cache.py), which shows as a latency spike on a busy node.
max_requests = _int("GUNICORN_MAX_REQUESTS", 25000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 2500)

# Not preloaded: each worker builds its own app, engine and pool after the fork (no sockets
# shared between processes), and a `kill -HUP` reload picks up new code.
preload_app = False

# Logs to stdout/stderr for the service manager (systemd journal, docker logs).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# Trust X-Forwarded-* only from the reverse proxy on this host.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips
