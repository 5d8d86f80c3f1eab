"""The firm's side: the queue and the organisations."""
from flask import Blueprint, abort, render_template
from sqlalchemy import select

from ..auth import roles_required
from ..extensions import db
from ..models import Organisation, Role, Ticket, TicketStatus
from ..services import contracts

bp = Blueprint("staff", __name__, url_prefix="/staff")

staff_only = roles_required(*Role.STAFF)


@bp.route("/")
@staff_only
def queue():
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.status.in_(TicketStatus.OPEN)).order_by(Ticket.opened_at)
    ).all()
    return render_template("staff/queue.html", tickets=tickets)


@bp.route("/organisations")
@staff_only
def organisations():
    rows = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    return render_template(
        "staff/organisations.html",
        organisations=[(org, contracts.current_contract(org.id)) for org in rows],
    )


@bp.route("/organisations/<int:organisation_id>")
@staff_only
def organisation(organisation_id: int):
    org = db.session.get(Organisation, organisation_id)
    if org is None:
        abort(404)
    return render_template("staff/organisation.html", organisation=org, contract=contracts.current_contract(org.id))
