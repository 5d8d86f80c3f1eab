"""Planning previews: one more technician, or a ticket moved to place N; nothing is saved."""
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import QueueEntry, QueueState, Role, Technician, Ticket
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import make_technician, staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket


def saved_queue() -> list[tuple]:
    db.session.expire_all()
    return [(e.ticket_id, e.position, e.eta_median, e.technician_id)
            for e in db.session.scalars(select(QueueEntry).order_by(QueueEntry.ticket_id))]


def setup(monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    make_technician()
    made = [open_ticket(acme, f"Problem {n}", impact="company" if n == 1 else "person") for n in range(1, 5)]
    return made


def generation() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.max(QueueState.generation))) or 0


def test_one_more_technician_brings_estimates_forward_without_saving(client, monkeypatch):
    made = setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    before, gen = saved_queue(), generation()
    board = client.get("/staff/").get_data(as_text=True)
    assert "What if one more technician were on shift?" in board
    response = client.get(f"/staff/what-if?scenario=extra_technician&ticket_id={made[0].id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Preview (not saved)" in html and "With one more technician on shift" in html
    table = html.split('id="what-if"')[1]
    assert all(f"Problem {n}" in table for n in range(1, 5))
    assert "min sooner" in table
    assert saved_queue() == before and generation() == gen
    assert db.session.scalar(select(func.count()).select_from(Technician)) == 1


def test_move_a_ticket_to_place_n_shows_changed_places(client, monkeypatch):
    made = setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    last = made[-1]
    assert db.session.get(QueueEntry, last.id).position == 4
    before = saved_queue()
    html = client.get(f"/staff/what-if?scenario=move&ticket_id={last.id}&move_to=1").get_data(as_text=True)
    rows = html.split('id="what-if"')[1].split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    first = rows[0]
    assert "Problem 4" in first and "<td>4</td>" in first and "<strong>1</strong> (↑)" in first
    assert "3 of 4 tickets would change place or estimate" in html or "4 of 4 tickets would change" in html
    assert saved_queue() == before
    assert db.session.get(Ticket, last.id).override_position is None


def test_a_move_that_would_put_a_promise_at_risk_says_so(client, monkeypatch):
    """Moving a one-person ticket to the front pushes the others back: the preview showed places and
    times only, and a dispatcher could not see that a promise on track now would slip."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    tight = make_plan("tight", name="Tight", remote_response_minutes=70)
    acme = make_organisation("Acme", tight)
    make_technician()
    made = [open_ticket(acme, f"Problem {n}", impact="company" if n == 1 else "person") for n in range(1, 4)]
    staff(client, Role.DISPATCHER)
    first, last = made[0], made[-1]
    assert db.session.get(QueueEntry, first.id).position == 1
    html = client.get(f"/staff/what-if?scenario=move&ticket_id={last.id}&move_to=1").get_data(as_text=True)
    rows = html.split('id="what-if"')[1].split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    problem_1 = next(row for row in rows if "Problem 1" in row)
    cells = problem_1.split("<td>")
    assert "On track" in cells[-2] and "At risk" in cells[-1], problem_1
    assert "on track now would be at risk" in html


def test_bad_questions_are_answered_with_the_field(client, monkeypatch):
    made = setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    response = client.get(f"/staff/what-if?scenario=move&ticket_id={made[0].id}&move_to=")
    assert response.status_code == 400 and "Give the place to try" in response.get_data(as_text=True)
    response = client.get("/staff/what-if?scenario=move&ticket_id=99999&move_to=2")
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)


def test_technicians_cannot_plan(client, monkeypatch):
    made = setup(monkeypatch)
    staff(client, Role.TECHNICIAN, "viewer@firm.example")
    assert client.get(f"/staff/what-if?scenario=extra_technician&ticket_id={made[0].id}").status_code == 403


def test_a_place_that_is_not_a_number_gets_one_message(client, monkeypatch):
    made = setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    response = client.get(f"/staff/what-if?scenario=move&ticket_id={made[3].id}&move_to=abc")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Not a valid integer value." in html and "Give a place of 1 or more." not in html
    assert "Preview (not saved)" not in html
