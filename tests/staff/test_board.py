"""The dispatch board reads the saved queue: its order, its filters, its role gates, and the
fingerprint the open board polls to say the queue has changed."""
import re
from datetime import datetime, timedelta, timezone

from portal.extensions import db
from portal.models import QueueEntry, Role, Ticket, TicketEvent, TicketStatus
from portal.services import queue
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician, staff

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def ticket(org, title, status=TicketStatus.NEW, **fields) -> Ticket:
    t = Ticket(organisation_id=org.id, title=title, status=status, opened_at=NOW - timedelta(hours=1), **fields)
    db.session.add(t)
    db.session.commit()
    return t


def entry(t: Ticket, position, tech=None, **fields) -> QueueEntry:
    e = QueueEntry(ticket_id=t.id, organisation_id=t.organisation_id, position=position,
                   ahead=None if position is None else position - 1, technician_id=tech.id if tech else None,
                   computed_at=NOW, **fields)
    db.session.add(e)
    db.session.commit()
    return e


def setup_queue():
    premium = make_plan("premium-24-7", name="Premium 24/7")
    acme = make_organisation("Acme", premium)
    bolt = make_organisation("Bolt")
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara Net")
    a = ticket(acme, "Label printer down", sla_plan_id=premium.id, sla_state="at_risk",
               response_due_at=NOW + timedelta(minutes=20))
    b = ticket(bolt, "Card terminals offline", sla_state="best_effort", sla_best_effort=True)
    c = ticket(acme, "Payroll PC", sla_plan_id=premium.id, sla_state="on_track")
    d = ticket(acme, "Switch replaced", status=TicketStatus.ON_SITE, technician_id=tom.id, sla_state="on_track")
    entry(a, 2, tara, eta_median=NOW + timedelta(minutes=30), eta_p90=NOW + timedelta(minutes=55),
          sla_at_risk=True, staff_reasons=["contract class", "impact 40"], client_reasons=["Premium 24/7"])
    entry(b, 3, tom, staff_reasons=["break/fix class"])
    entry(c, 1, tom, staff_reasons=["deadline 17:00 +50"], eta_median=NOW + timedelta(minutes=10))
    entry(d, None, tom)
    return dict(a=a, b=b, c=c, d=d, tom=tom, tara=tara, acme=acme, bolt=bolt)


def titles_in_order(html: str, titles) -> list[str]:
    return sorted(titles, key=html.index)


def test_board_shows_saved_order_and_details(client):
    q = setup_queue()
    staff(client, Role.DISPATCHER)
    html = client.get("/staff/").get_data(as_text=True)
    waiting = html.split('id="board-waiting"')[1].split("</table>")[0]
    assert titles_in_order(waiting, ["Label printer down", "Card terminals offline", "Payroll PC"]) == [
        "Payroll PC", "Label printer down", "Card terminals offline"]
    assert "Switch replaced" in html.split('id="board-active"')[1]
    for text in ("Premium 24/7", "Break/fix", "impact 40", "deadline 17:00 +50", "Tara Net", "expected",
                 "At risk", "best effort", "90%:"):
        assert text in html, text


def test_board_does_not_recompute_on_load(client):
    q = setup_queue()
    staff(client, Role.TECHNICIAN, "viewer@firm.example")
    before = db.session.get(QueueEntry, q["a"].id).computed_at
    client.get("/staff/")
    db.session.expire_all()
    assert db.session.get(QueueEntry, q["a"].id).computed_at == before


def test_filters(client):
    q = setup_queue()
    staff(client, Role.DISPATCHER)
    html = client.get("/staff/?plan=break-fix").get_data(as_text=True)
    assert "Card terminals offline" in html and "Payroll PC" not in html
    html = client.get("/staff/?at_risk=y").get_data(as_text=True)
    assert "Label printer down" in html and "Payroll PC" not in html and "Card terminals" not in html
    html = client.get(f"/staff/?technician={q['tara'].id}").get_data(as_text=True)
    assert "Label printer down" in html and "Payroll PC" not in html
    html = client.get("/staff/?state=on_track").get_data(as_text=True)
    assert "Payroll PC" in html and "Switch replaced" in html and "Label printer down" not in html
    # Nonsense filters are ignored, not errors.
    assert client.get("/staff/?plan=nope&state=x&technician=abc").status_code == 200
    for odd in ("²", "١٢", "9" * 4301):  # digits int() refuses or reads as another number
        html = client.get("/staff/", query_string={"technician": odd}).get_data(as_text=True)
        assert "Payroll PC" in html and "Label printer down" in html


def test_staff_read_a_deadline_at_risk_as_the_client_does(client):
    """The SLA clock says on track, but the plan's 90% bound is past the deadline: the client is told
    "at risk of being missed", so the board, its state filter, the ticket page and the technician's
    phone view say at risk too (marked as the forecast's), and a finished ticket keeps its clock's state."""
    q = setup_queue()
    slipping = ticket(q["acme"], "Scanner offline", sla_plan_id=q["a"].sla_plan_id, sla_state="on_track",
                      response_due_at=NOW + timedelta(minutes=40))
    entry(slipping, 4, q["tom"], eta_median=NOW + timedelta(minutes=35), eta_p90=NOW + timedelta(minutes=70),
          sla_at_risk=True)
    staff(client, Role.DISPATCHER)
    row = client.get("/staff/").get_data(as_text=True).split("Scanner offline")[1].split("</tr>")[0]
    assert "At risk" in row and "forecast late" in row and "On track" not in row
    assert "Scanner offline" in client.get("/staff/?state=at_risk").get_data(as_text=True)
    on_track = client.get("/staff/?state=on_track").get_data(as_text=True)
    assert "Scanner offline" not in on_track and "Payroll PC" in on_track
    page = client.get(f"/staff/tickets/{slipping.id}").get_data(as_text=True)
    assert "At risk</span> (forecast: at risk of being missed)" in page
    client.post("/auth/logout")
    login(client, q["tom"].user.email)
    job = client.get("/staff/my-jobs").get_data(as_text=True).split("Scanner offline")[1].split("</article>")[0]
    assert "At risk" in job and "On track" not in job

    slipping.status = TicketStatus.RESOLVED
    db.session.commit()
    client.post("/auth/logout")
    staff(client, Role.DISPATCHER, "second@firm.example")
    page = client.get(f"/staff/tickets/{slipping.id}").get_data(as_text=True)
    assert "On track" in page and "(forecast:" not in page


def test_unranked_tickets_are_still_listed(client):
    org = make_organisation("Acme")
    ticket(org, "Brand new problem")
    staff(client, Role.DISPATCHER)
    html = client.get("/staff/").get_data(as_text=True)
    assert "Not yet ranked" in html and "Brand new problem" in html


def test_ticket_detail_shows_full_timeline(client):
    q = setup_queue()
    db.session.add_all([
        TicketEvent(ticket_id=q["a"].id, at=NOW, kind="opened", message="Ticket opened", public=True),
        TicketEvent(ticket_id=q["a"].id, at=NOW, kind="note", message="Called the client back", public=False),
    ])
    db.session.commit()
    staff(client, Role.TECHNICIAN, "viewer@firm.example")
    html = client.get(f"/staff/tickets/{q['a'].id}").get_data(as_text=True)
    assert "Ticket opened" in html and "Called the client back" in html and "(staff only)" in html
    assert "Override the place" not in html  # technicians read only
    assert client.get("/staff/tickets/999").status_code == 404


def test_dispatcher_sees_action_forms(client):
    q = setup_queue()
    staff(client, Role.DISPATCHER)
    html = client.get(f"/staff/tickets/{q['a'].id}").get_data(as_text=True)
    assert "Override the place" in html and "Assign" in html and "Work estimate" in html


def test_roles_for_board_and_detail(client):
    q = setup_queue()
    assert client.get("/staff/").status_code == 302
    make_user("a@acme.example", organisation=q["acme"])
    login(client, "a@acme.example")
    for url in ("/staff/", f"/staff/tickets/{q['a'].id}", "/staff/my-jobs"):
        assert client.get(url).status_code == 403
    for url in (f"/staff/tickets/{q['a'].id}/override", f"/staff/tickets/{q['a'].id}/assign",
                f"/staff/tickets/{q['a'].id}/details", f"/staff/my-jobs/{q['a'].id}/status"):
        assert client.post(url, data={}).status_code == 403


def test_technician_cannot_act_on_the_board(client):
    q = setup_queue()
    login(client, q["tom"].user.email)
    for url in (f"/staff/tickets/{q['a'].id}/override", f"/staff/tickets/{q['a'].id}/assign",
                f"/staff/tickets/{q['a'].id}/details", f"/staff/tickets/{q['a'].id}/override/clear"):
        response = client.post(url, data={"override-position": "1", "override-reason": "mine",
                                          "override-version": str(q["a"].version)})
        assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Ticket, q["a"].id).override_position is None


def test_my_jobs_lists_assigned_then_expected_jobs(client):
    q = setup_queue()
    login(client, q["tom"].user.email)
    html = client.get("/staff/my-jobs").get_data(as_text=True)
    order = titles_in_order(html, ["Switch replaced", "Payroll PC", "Card terminals offline"])
    assert order == ["Switch replaced", "Payroll PC", "Card terminals offline"]
    assert "Label printer down" not in html  # Tara's
    assert "1 Main St" in html and "Now: #" in html


def test_my_jobs_for_staff_who_are_not_technicians(client):
    staff(client, Role.DISPATCHER)
    html = client.get("/staff/my-jobs").get_data(as_text=True)
    assert "not set up as a technician" in html


def test_the_board_carries_its_fingerprint_and_the_poll_answers_304_until_the_queue_changes(client):
    setup_queue()
    staff(client, Role.DISPATCHER)
    page = client.get("/staff/").get_data(as_text=True)
    drawn = re.search(r'id="board-changed"[^>]*data-tag="([0-9a-f]+)"', page).group(1)
    assert 'src="/static/js/board-changes.js"' in page and "The queue has changed" in page

    answer = client.get("/staff/board/tag.json")
    assert answer.status_code == 200 and answer.get_json() == {"tag": drawn}
    assert client.get("/staff/board/tag.json", headers={"If-None-Match": answer.headers["ETag"]}).status_code == 304

    queue.recompute(NOW)
    changed = client.get("/staff/board/tag.json", headers={"If-None-Match": answer.headers["ETag"]})
    assert changed.status_code == 200 and changed.get_json()["tag"] != drawn


def test_a_ticket_leaving_the_board_changes_the_fingerprint(client):
    tickets = setup_queue()
    staff(client, Role.TECHNICIAN)
    before = client.get("/staff/board/tag.json").get_json()["tag"]
    tickets["d"].status = TicketStatus.RESOLVED
    db.session.commit()
    assert client.get("/staff/board/tag.json").get_json()["tag"] != before


def test_clients_cannot_poll_the_board(client):
    setup_queue()
    make_user("a@acme.example", organisation=make_organisation("Acme 2"))
    login(client, "a@acme.example")
    assert client.get("/staff/board/tag.json").status_code == 403
