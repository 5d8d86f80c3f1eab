"""The client portal: create_app() builds the Flask application."""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Optional

from flask import Flask, g, render_template, request, url_for
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from . import page_cache
from .config import DEV_SECRET_KEY, UPLOAD_FORM_MARGIN, load_config
from .extensions import csrf, db, limiter, login_manager, migrate
from .services.text import DATABASE_ID_MAX

CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self' https://checkout.stripe.com https://billing.stripe.com",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "object-src": "'none'",
}



class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` matches only numbers a row can have: a larger one is no address (404), not an
    OverflowError from the database driver (500) on every route that loads by id."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: Optional[int] = None,
                 max: Optional[int] = DATABASE_ID_MAX, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def create_app(test_config: Optional[dict[str, Any]] = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["ATTACHMENT_MAX_BYTES"] + UPLOAD_FORM_MARGIN
    if app.config["PORTAL_ENV"] == "production" and app.config["SECRET_KEY"] in ("", DEV_SECRET_KEY):
        raise RuntimeError("Refusing to start in production with the development SECRET_KEY: set SECRET_KEY.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if app.config.get("TRUSTED_PROXIES"):
        # Behind nginx: client address (rate limits, logs) and scheme from X-Forwarded-* set by that many proxies.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    from .models import render_migration_item

    migrate.init_app(app, db, render_as_batch=True, compare_type=True, render_item=render_migration_item)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "basic"
    csrf.init_app(app)
    limiter.init_app(app)
    page_cache.init_app(app)
    production = app.config["PORTAL_ENV"] == "production"
    Talisman(
        app,
        content_security_policy=CSP,
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=production,
        frame_options="DENY",
    )

    from . import models  # noqa: F401  (registers the tables)
    from .auth import load_user

    login_manager.user_loader(load_user)

    from .api.views import bp as api_bp
    from .auth.views import bp as auth_bp
    from .billing.views import bp as billing_bp
    from .client.views import bp as client_bp
    from .health.views import bp as health_bp
    from .public.views import bp as public_bp
    from .staff.views import bp as staff_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(client_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(billing_bp)
    app.register_blueprint(api_bp)

    from .templating import register_template_helpers

    register_template_helpers(app)
    _register_error_pages(app)

    from .cli import register_cli

    register_cli(app)
    return app


ERROR_PAGES = {
    403: ("Not allowed", "Your account cannot open this page."),
    404: ("Not found", "There is nothing at this address."),
    429: ("Too many attempts", "Too many attempts. Wait a minute and try again."),
}


def _too_large(page: Callable[..., Any]):
    """A file far over the limit never reaches the service; the page still says the limit and leads back."""
    from .services.tickets import attachment_limit, megabytes

    text = f"That upload is larger than the portal accepts. Files can be at most {megabytes(attachment_limit())} MB."
    if request.endpoint == "client.ticket_attach" and request.view_args:
        back = url_for("client.ticket", ticket_id=request.view_args["ticket_id"])
        return page(413, "Too large", text, back_url=back, back_text="Back to the ticket")
    return page(413, "Too large", text)


def _member_on_an_admin_page() -> bool:
    """A client member refused a page of the client or billing side: one only their admins may open."""
    from flask_login import current_user

    from .models import Role

    endpoint = request.endpoint or ""
    return (current_user.is_authenticated and current_user.role == Role.CLIENT_MEMBER
            and endpoint.startswith(("client.", "billing.")) and not endpoint.startswith("billing.staff"))


def _admins_only(page: Callable[..., Any]):
    """Why: a member who typed or was sent the users or billing address read only "Your account cannot
    open this page.", not who can."""
    from flask_login import current_user

    from .services.accounts import admins_to_ask

    admins = admins_to_ask(current_user.organisation_id)
    text = ("This page is for your organisation's admins (users, billing and API tokens)."
            + (f" Ask {admins} if something there needs changing." if admins else ""))
    return page(403, "For admins only", text, back_url=url_for("client.dashboard"), back_text="Back to your tickets")


FORM_EXPIRED_TITLE = "Nothing was sent"


def form_expired_words(description: str) -> str:
    """Why a form was refused for its CSRF token, in words for the person who pressed the button.

    Why: the token lives in the session, so a form opened before signing out (or in again, in
    another tab) or before the browser was restarted is refused; the bare "400 Bad Request: The
    CSRF session token is missing." page left people unsure whether their emergency was filed.
    """
    return ("This page was opened before your session changed (you signed out or in again, perhaps in another "
            f"tab, or the browser was restarted), so nothing was sent and nothing was changed. ({description})")


def _same_site_path(address: Optional[str]) -> Optional[str]:
    """The path (and query) of an address on this site, else None: a link back never leads elsewhere."""
    from urllib.parse import urlsplit

    from .auth import safe_next

    if not address:
        return None
    parts = urlsplit(address)
    if parts.netloc and parts.netloc != request.host:
        return None
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))


def form_expired_page(error: HTTPException):
    """The page for a form refused for its CSRF token: nothing happened, and the way back to send it again."""
    from flask_login import current_user

    back = request.full_path.rstrip("?") if request.method == "GET" else _same_site_path(request.referrer)
    if current_user.is_authenticated:
        text = form_expired_words(error.description) + " Open the page again and send it again."
        back_text = "Open the page again"
    else:
        text = (form_expired_words(error.description) + " Log in again, then send it again; your browser's "
                "Back button usually still shows what you typed.")
        back, back_text = url_for("auth.login"), "Log in again"
    return render_template("error.html", code=400, title=FORM_EXPIRED_TITLE, text=text,
                           back_url=back or None, back_text=back_text), 400


def _register_error_pages(app: Flask) -> None:
    from .api.views import answers_in_json, http_error as api_error

    def page(code: int, title: str, text: str, back_url: Optional[str] = None, back_text: Optional[str] = None):
        return render_template("error.html", code=code, title=title, text=text,
                               back_url=back_url, back_text=back_text), code

    def http_error(error: HTTPException):
        """One handler for every HTTP error, so no path under /api/ can fall through to an HTML page."""
        if answers_in_json():
            return api_error(error)
        if error.code == 413:
            return _too_large(page)
        if isinstance(error, CSRFError):
            return form_expired_page(error)
        if error.code == 403 and _member_on_an_admin_page():
            return _admins_only(page)
        if error.code in ERROR_PAGES:
            return page(error.code, *ERROR_PAGES[error.code])
        return error

    app.register_error_handler(HTTPException, http_error)

    def unavailable(error: Exception):
        db.session.rollback()
        app.logger.exception("database unavailable: %s", error)
        # The page itself must not need the database: base.html asks who is logged in, and loading
        # the user again would fail the same way (a 500 instead of this page for logged-in visitors).
        g._login_user = login_manager.anonymous_user()
        if answers_in_json():  # the JSON API answers in its own error format
            return {"errors": {"database": "The portal cannot reach its database. Nothing was saved; retry shortly."}}, 503, {"Retry-After": "30"}
        html, code = page(503, "Temporarily unavailable", "The portal cannot reach its database. Nothing was saved; please try again in a moment.")
        return html, code, {"Retry-After": "30"}

    app.register_error_handler(OperationalError, unavailable)
    app.register_error_handler(DBAPIError, unavailable)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL and a busy timeout let several workers share the default SQLite file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
