"""Who may use each route: the access-control policy the matrix test checks.

Every endpoint of the app must appear in ROUTES (a key "endpoint" or "endpoint METHOD"), so a
route added without a decision about who may use it fails the test suite.
"""
from __future__ import annotations

from enum import Enum


class Access(str, Enum):
    PUBLIC = "public"                # anyone, logged in or not
    LOGGED_IN = "logged_in"          # any account
    CLIENT = "client"                # client members and admins of the object's organisation
    CLIENT_ADMIN = "client_admin"    # client admins of the object's organisation (users, billing, tokens)
    STAFF = "staff"                  # technicians, dispatchers, owners
    DISPATCH = "dispatch"            # dispatchers and owners
    OWNER = "owner"                  # owners only
    API_CLIENT = "api_client"        # JSON API: like CLIENT, but 401 (not a redirect) when anonymous
    API_CLIENT_ADMIN = "api_client_admin"
    SIGNED_WEBHOOK = "signed_webhook"  # Stripe: no session matters, an unsigned request is refused (400)


ROUTES: dict[str, Access] = {
    "static": Access.PUBLIC,
    # public
    "public.home": Access.PUBLIC,
    "public.plans": Access.PUBLIC,
    "public.plan_detail": Access.PUBLIC,
    "public.calculator": Access.PUBLIC,
    "health.healthz": Access.PUBLIC,
    "health.readyz": Access.PUBLIC,
    # accounts
    "auth.login": Access.PUBLIC,
    "auth.logout": Access.PUBLIC,
    "auth.signup": Access.PUBLIC,
    "auth.check_inbox": Access.PUBLIC,
    "auth.confirm_email": Access.PUBLIC,
    "auth.resend_confirmation": Access.PUBLIC,
    "auth.reset_request": Access.PUBLIC,
    "auth.reset_password": Access.PUBLIC,
    "auth.accept_invitation": Access.PUBLIC,
    "auth.end_all_sessions": Access.LOGGED_IN,
    "auth.change_password": Access.LOGGED_IN,
    "auth.change_email": Access.LOGGED_IN,
    "auth.confirm_email_change": Access.LOGGED_IN,
    # client area
    "client.dashboard": Access.CLIENT,
    "client.users": Access.CLIENT_ADMIN,
    "client.remove_colleague": Access.CLIENT_ADMIN,
    "client.restore_colleague": Access.CLIENT_ADMIN,
    "client.change_colleague_role": Access.CLIENT_ADMIN,
    "client.cancel_invitation": Access.CLIENT_ADMIN,
    "client.choose_plan": Access.CLIENT,
    "client.request_invoice_plan": Access.CLIENT_ADMIN,
    "client.new_ticket": Access.CLIENT,
    "client.ticket": Access.CLIENT,
    "client.ticket_live": Access.CLIENT,
    "client.ticket_status": Access.CLIENT,
    "client.ticket_comment": Access.CLIENT,
    "client.ticket_attach": Access.CLIENT,
    "client.ticket_attachment": Access.CLIENT,
    "client.account": Access.CLIENT_ADMIN,
    "client.revoke_api_token": Access.CLIENT_ADMIN,
    "client.set_timezone": Access.CLIENT_ADMIN,
    # JSON API (session or Bearer token of the organisation)
    "api.openapi": Access.PUBLIC,
    "api.list_tickets": Access.API_CLIENT,
    "api.get_ticket": Access.API_CLIENT,
    "api.create_ticket": Access.API_CLIENT,
    # billing (client admins alone manage billing; the owner activates invoice contracts)
    "billing.overview": Access.CLIENT_ADMIN,
    "billing.checkout": Access.CLIENT_ADMIN,
    "billing.change_plan": Access.CLIENT_ADMIN,
    "billing.cancel": Access.CLIENT_ADMIN,
    "billing.keep": Access.CLIENT_ADMIN,
    "billing.customer_portal": Access.CLIENT_ADMIN,
    "billing.upgrade_checkout": Access.CLIENT_ADMIN,
    "billing.success": Access.CLIENT,
    "billing.cancelled": Access.CLIENT,
    "billing.withdraw_request": Access.CLIENT_ADMIN,
    "billing.upgrade_panel": Access.CLIENT,
    "billing.webhook": Access.SIGNED_WEBHOOK,
    "billing.staff_contracts": Access.OWNER,
    "billing.staff_activate": Access.OWNER,
    # staff console
    "staff.queue": Access.STAFF,
    "staff.board_changes": Access.STAFF,
    "staff.ticket": Access.STAFF,
    "staff.my_jobs": Access.STAFF,
    "staff.tap_status": Access.STAFF,
    "staff.organisations": Access.STAFF,
    "staff.organisation": Access.STAFF,
    "staff.override": Access.DISPATCH,
    "staff.clear_override": Access.DISPATCH,
    "staff.assign": Access.DISPATCH,
    "staff.details": Access.DISPATCH,
    "staff.technicians": Access.DISPATCH,
    "staff.technician": Access.DISPATCH,
    "staff.add_shift": Access.DISPATCH,
    "staff.delete_shift": Access.DISPATCH,
    "staff.add_time_off": Access.DISPATCH,
    "staff.promises": Access.DISPATCH,
    "staff.close": Access.DISPATCH,
    "staff.delete_time_off": Access.DISPATCH,
    "staff.on_call": Access.DISPATCH,
    "staff.delete_on_call": Access.DISPATCH,
    "staff.plans": Access.OWNER,
    "staff.new_plan": Access.OWNER,
    "staff.edit_plan": Access.OWNER,
    "staff.triage_weights": Access.OWNER,
    "staff.what_if": Access.DISPATCH,
    "staff.comment": Access.STAFF,
    "staff.download_attachment": Access.STAFF,
}

STAFF_ROLES = {
    Access.STAFF: {"technician", "dispatcher", "owner"},
    Access.DISPATCH: {"dispatcher", "owner"},
    Access.OWNER: {"owner"},
}


def access_for(endpoint: str, method: str) -> Access | None:
    return ROUTES.get(f"{endpoint} {method}") or ROUTES.get(endpoint)


ALLOWED = "allowed"      # passed the gate: 2xx, 3xx elsewhere than the log-in page, or 400/409/422 on a bad body
LOGIN = "login"          # redirected to the log-in page
UNAUTHORISED = "401"     # JSON API without credentials
FORBIDDEN = "403"
HIDDEN = "404"           # another organisation's object: answered as if it did not exist
REFUSED = "400"          # signed webhook without a valid signature


def expected(access: Access, role: str, organisation_scoped: bool) -> str:
    """The outcome `role` must meet on a route of kind `access` (organisation_scoped: URL names an object of org A)."""
    if access is Access.PUBLIC:
        return ALLOWED
    if access is Access.SIGNED_WEBHOOK:
        return REFUSED
    api = access in (Access.API_CLIENT, Access.API_CLIENT_ADMIN)
    if role == "anonymous":
        return UNAUTHORISED if api else LOGIN
    if access is Access.LOGGED_IN:
        return ALLOWED
    if access in STAFF_ROLES:
        return ALLOWED if role in STAFF_ROLES[access] else FORBIDDEN
    # client areas (pages and API)
    if role in ("technician", "dispatcher", "owner"):
        return FORBIDDEN
    admin_only = access in (Access.CLIENT_ADMIN, Access.API_CLIENT_ADMIN)
    if role == "client_member":
        return FORBIDDEN if admin_only else ALLOWED
    if role == "other_admin":
        return HIDDEN if organisation_scoped else ALLOWED
    return ALLOWED


def allowed_role(access: Access) -> str:
    """One role that passes the gate of `access` (for checks that need the request to reach the view)."""
    return {
        Access.PUBLIC: "anonymous",
        Access.SIGNED_WEBHOOK: "anonymous",
        Access.LOGGED_IN: "client_admin",
        Access.CLIENT: "client_member",
        Access.CLIENT_ADMIN: "client_admin",
        Access.API_CLIENT: "client_member",
        Access.API_CLIENT_ADMIN: "client_admin",
        Access.STAFF: "technician",
        Access.DISPATCH: "dispatcher",
        Access.OWNER: "owner",
    }[access]
