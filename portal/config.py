"""Settings from environment variables (a .env file is read in development)."""
from __future__ import annotations

import os
from pathlib import Path

DEV_SECRET_KEY = "dev-only-not-secret"
# Room for the rest of an upload form (CSRF token, multipart headers, a long file name) above the largest file.
UPLOAD_FORM_MARGIN = 64 * 1024


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(instance_path: str) -> dict:
    """Read every setting once, at app creation; nothing else reads os.environ."""
    env = os.environ.get("PORTAL_ENV", "development")
    default_db = "sqlite:///" + str(Path(instance_path) / "portal.sqlite3")
    return {
        "PORTAL_ENV": env,
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", default_db),
        "FIRM_NAME": os.environ.get("FIRM_NAME", "Northwind IT Services"),
        "FIRM_TIMEZONE": os.environ.get("FIRM_TIMEZONE", "America/New_York"),
        "HOLIDAY_COUNTRY": os.environ.get("HOLIDAY_COUNTRY", "US"),
        "HOLIDAY_REGION": os.environ.get("HOLIDAY_REGION", "NY") or None,
        "BUSINESS_HOURS": os.environ.get("BUSINESS_HOURS", "Mon-Fri 08:00-18:00"),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_PUBLISHABLE_KEY": os.environ.get("STRIPE_PUBLISHABLE_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "STRIPE_MAX_NETWORK_RETRIES": int(os.environ.get("STRIPE_MAX_NETWORK_RETRIES", "2")),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        # Status pages kept per worker while nothing is written (portal/page_cache.py; needs REDIS_URL; 0 = off).
        "PAGE_CACHE_SECONDS": int(os.environ.get("PAGE_CACHE_SECONDS", "60")),
        "PAGE_CACHE_ENTRIES": int(os.environ.get("PAGE_CACHE_ENTRIES", "500")),
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "25")),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "portal@northwind-it.example"),
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER", str(Path(instance_path) / "attachments")),
        # The largest attachment; the request cap (MAX_CONTENT_LENGTH) adds UPLOAD_FORM_MARGIN in create_app.
        "ATTACHMENT_MAX_BYTES": int(os.environ.get("MAX_UPLOAD_BYTES", str(10 * 1024 * 1024))),
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(os.environ.get("DATABASE_URL", default_db)),
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        # Redis down must not turn log-in into a 500: count in the worker's memory until it is back.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "portal",
        # X-RateLimit-Limit/Remaining/Reset on limited routes, and Retry-After on a 429: a tool knows when to retry.
        "RATELIMIT_HEADERS_ENABLED": True,
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    # One pool per gunicorn worker process: one connection per worker thread (gunicorn.conf.py
    # reads the same GUNICORN_THREADS), a little overflow for the outbox and CLI-in-process work.
    threads = int(os.environ.get("GUNICORN_THREADS", "4"))
    return {
        "pool_pre_ping": True,
        "pool_size": int(os.environ.get("DB_POOL_SIZE", str(threads))),
        "max_overflow": int(os.environ.get("DB_MAX_OVERFLOW", "2")),
        "pool_recycle": 1800,
    }
