"""The technician's phone view: current and next jobs, one-tap status changes that re-run the queue."""
import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, QueueEntry, Role, Ticket, TicketEvent, TicketStatus
from portal.services import tickets
from tests.client.helpers import set_clock
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician, staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket


def fresh(ticket: Ticket) -> Ticket:
    return db.session.get(Ticket, ticket.id, populate_existing=True)


def tap(client, ticket: Ticket, status: str, note: str = "", version=None):
    version = fresh(ticket).version if version is None else version
    prefix = f"t{ticket.id}-"
    return client.post(f"/staff/my-jobs/{ticket.id}/status",
                       data={prefix + "status": status, prefix + "version": str(version), prefix + "note": note})


def setup(monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    make_user("alice@acme.example", organisation=acme, name="Alice Acme")
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara Net")
    job = open_ticket(acme, "Server room switch dead", impact="company", onsite=True, category="network")
    tickets.assign(job.id, tom.id, None, TUESDAY_10_NY)
    return acme, tom, tara, job


def test_my_jobs_page_is_a_phone_page_with_address_deadline_and_taps(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    html = client.get("/staff/my-jobs").get_data(as_text=True)
    assert 'name="viewport"' in html and 'class="jobs"' in html
    assert "Server room switch dead" in html and "1 Main St" in html and "Deadline" in html
    assert "openstreetmap.org/?mlat=40.75" in html
    for label in ("En route", "On site", "Waiting on client", "Resolved", "Resolution note"):
        assert label in html, label


def test_an_expected_job_says_on_site_for_an_arrival_and_start_for_remote_work(client, monkeypatch):
    """The phone said "start" beside an on-site job's estimate, which is when the technician arrives."""
    acme, tom, tara, job = setup(monkeypatch)
    remote = open_ticket(acme, "Outlook keeps asking for the password", category="network")
    tickets.assign(remote.id, tom.id, None, TUESDAY_10_NY)
    login(client, tom.user.email)
    html = client.get("/staff/my-jobs").get_data(as_text=True)
    for ticket, words in ((job, "; on site "), (remote, "; start ")):
        card = html.split(f'id="job-{ticket.id}"')[1].split("</article>")[0]
        assert "<dt>Queue place</dt>" in card and words in card, (ticket.title, card)


def test_taps_move_the_ticket_through_its_day(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    assert tap(client, job, "en_route").status_code == 303
    assert fresh(job).status == TicketStatus.EN_ROUTE
    # The client hears the technician is on the way (written with the change).
    assert db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_en_route")).first()
    tap(client, job, "on_site")
    assert fresh(job).status == TicketStatus.ON_SITE and fresh(job).arrived_at == TUESDAY_10_NY
    tap(client, job, "waiting_on_client")
    assert fresh(job).status == TicketStatus.WAITING_ON_CLIENT
    assert fresh(job).pauses[-1].ended_at is None
    tap(client, job, "on_site")
    assert fresh(job).pauses[-1].ended_at is not None
    response = tap(client, job, "resolved", note="Replaced the switch's power supply")
    assert response.status_code == 303
    ticket = fresh(job)
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_at == TUESDAY_10_NY
    messages = [e.message for e in ticket.events if e.kind == "status"]
    assert any("power supply" in m for m in messages)
    # Resolved work leaves the queue and the technician's list.
    db.session.expire_all()
    entry = db.session.get(QueueEntry, job.id)
    assert entry is None or entry.position is None
    assert "Server room switch dead" not in client.get("/staff/my-jobs").get_data(as_text=True)


def test_resolving_needs_a_note(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    response = tap(client, job, "resolved", note="  ")
    assert response.status_code == 400
    assert fresh(job).status == TicketStatus.ASSIGNED
    assert "write a short note" in response.get_data(as_text=True)


def test_a_stale_or_impossible_tap_changes_nothing(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    old = fresh(job).version
    tap(client, job, "en_route")
    response = tap(client, job, "on_site", version=old)
    assert response.status_code == 409 and fresh(job).status == TicketStatus.EN_ROUTE
    assert "changed by someone else" in response.get_data(as_text=True)
    response = tap(client, job, "en_route")
    assert response.status_code == 409 and "already" in response.get_data(as_text=True)
    response = tap(client, job, "closed")
    assert response.status_code == 400 and "not understood" in response.get_data(as_text=True)
    assert fresh(job).status == TicketStatus.EN_ROUTE


def test_a_refused_tap_keeps_the_resolution_note_typed(client, monkeypatch):
    """A stale page or a note too long: nothing changes, and the note comes back as typed (with the
    version now saved, so tapping Resolved again is deliberate and succeeds)."""
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    old = fresh(job).version
    tap(client, job, "en_route")
    note = "Replaced the PSU & re-seated the uplink <b>module</b>"
    response = tap(client, job, "resolved", note=note, version=old)
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and "changed by someone else" in page
    assert "Replaced the PSU &amp; re-seated the uplink &lt;b&gt;module&lt;/b&gt;</textarea>" in page
    assert f'name="t{job.id}-version" type="hidden" value="{fresh(job).version}"' in page
    assert fresh(job).status == TicketStatus.EN_ROUTE

    response = tap(client, job, "resolved", note="x" * 2001)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "x" * 2001 + "</textarea>" in page
    assert "Resolution note: Field cannot be longer than 2000 characters." in page
    assert "resolution note: Field cannot be longer than 2000 characters. Nothing changed." in page
    assert fresh(job).status == TicketStatus.EN_ROUTE

    # 1,990 characters and ten line breaks, as a browser sends them (CR LF): within the 2,000 it allowed.
    assert tap(client, job, "resolved", note="y" * 1990 + "\r\n" * 10).status_code == 303
    assert fresh(job).status == TicketStatus.RESOLVED


def test_other_technicians_and_clients_cannot_tap(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tara.user.email)
    assert "Server room switch dead" not in client.get("/staff/my-jobs").get_data(as_text=True)
    response = tap(client, job, "en_route")
    assert response.status_code == 409
    assert f"#{job.id} is no longer on your list (it is with Tom Tech now): your tap changed nothing." in (
        response.get_data(as_text=True))
    assert fresh(job).status == TicketStatus.ASSIGNED
    client.post("/auth/logout")
    login(client, "alice@acme.example")
    assert tap(client, job, "en_route").status_code == 403
    assert fresh(job).status == TicketStatus.ASSIGNED


def test_tapping_an_expected_job_takes_it(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority"))
    tom = make_technician()
    job = open_ticket(acme, "Email bounces", category="email")
    assert db.session.get(QueueEntry, job.id).technician_id == tom.id
    login(client, tom.user.email)
    assert "Expected: #" in client.get("/staff/my-jobs").get_data(as_text=True)
    tap(client, job, "in_progress")
    ticket = fresh(job)
    assert (ticket.status, ticket.technician_id, ticket.first_response_at) == (
        TicketStatus.IN_PROGRESS, tom.id, TUESDAY_10_NY)



@pytest.mark.parametrize("status, note", [("waiting_on_client", ""), ("resolved", "Cleared the mail queue")])
def test_answering_or_fixing_an_expected_job_at_once_takes_it_too(client, monkeypatch, status, note):
    """Waiting on the client, or resolved straight away: the job is still the technician's, not nobody's."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority"))
    tom = make_technician()
    job = open_ticket(acme, "Email bounces", category="email")
    login(client, tom.user.email)
    assert tap(client, job, status, note=note).status_code == 303
    assert (fresh(job).status, fresh(job).technician_id) == (status, tom.id)


def test_dispatcher_may_tap_for_a_technician(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    assert tap(client, job, "en_route").status_code == 303
    assert fresh(job).status == TicketStatus.EN_ROUTE
    assert db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == job.id, TicketEvent.kind == "status")).first()


def test_the_description_keeps_its_line_breaks_on_the_phone(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    fresh(job).description = "Rack B.\nKey at reception."
    db.session.commit()
    login(client, tom.user.email)
    assert '<p class="as-typed">Rack B.\nKey at reception.</p>' in client.get("/staff/my-jobs").get_data(as_text=True)


def offered(client, ticket: Ticket) -> set[str]:
    import re
    html = client.get("/staff/my-jobs").get_data(as_text=True)
    return set(re.findall(rf'name="t{ticket.id}-status" value="([a-z_]+)"', html))


def test_only_the_moves_the_status_rules_allow_are_offered(client, monkeypatch):
    """An on-site job offered 'En route' (tap: 409 'cannot become'); a remote job offered 'On site'."""
    acme, tom, tara, job = setup(monkeypatch)
    remote = open_ticket(acme, "Outlook keeps asking for the password")
    tickets.assign(remote.id, tom.id, None, TUESDAY_10_NY)
    login(client, tom.user.email)
    assert offered(client, job) == {"en_route", "on_site", "in_progress", "waiting_on_client", "resolved"}
    assert offered(client, remote) == {"in_progress", "waiting_on_client", "resolved"}
    tap(client, job, "on_site")
    assert offered(client, job) == {"in_progress", "waiting_on_client", "resolved"}
    for status in offered(client, job) - {"resolved"}:
        assert status in tickets.TRANSITIONS[TicketStatus.ON_SITE]


def test_a_remote_job_cannot_be_marked_on_site_or_en_route(client, monkeypatch):
    acme, tom, tara, job = setup(monkeypatch)
    remote = open_ticket(acme, "Outlook keeps asking for the password")
    tickets.assign(remote.id, tom.id, None, TUESDAY_10_NY)
    login(client, tom.user.email)
    for status in ("on_site", "en_route"):
        response = tap(client, remote, status)
        assert response.status_code == 409 and "handled remotely" in response.get_data(as_text=True)
        assert fresh(remote).status == TicketStatus.ASSIGNED and fresh(remote).arrived_at is None


def test_a_double_tap_says_the_status_is_set_not_that_someone_else_changed_it(client, monkeypatch):
    """The second of two taps (or Back and tap again) carries the version before the first: the job is
    already where the technician wanted it, so the page must not say nothing was saved."""
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    before = fresh(job).version
    assert tap(client, job, "en_route", version=before).status_code == 303
    events = len(fresh(job).events)
    response = tap(client, job, "en_route", version=before)
    assert response.status_code == 303
    page = client.get("/staff/my-jobs").get_data(as_text=True)
    assert f"#{job.id} is already marked &#39;En route&#39;: your tap went through." in page
    assert "changed by someone else" not in page
    assert fresh(job).status == TicketStatus.EN_ROUTE and len(fresh(job).events) == events

    # A stale tap asking for another status is still refused as before.
    response = tap(client, job, "waiting_on_client", version=before)
    assert response.status_code == 409 and "changed by someone else" in response.get_data(as_text=True)
    assert fresh(job).status == TicketStatus.EN_ROUTE


def test_a_tap_on_a_job_given_to_someone_else_since_the_page_was_drawn_says_so(client, monkeypatch):
    """The phone showed the job (assigned, or expected by the engine); meanwhile the dispatcher gave it to
    a colleague. The tap answered 'Not allowed: Your account cannot open this page.'"""
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    assert "Server room switch dead" in client.get("/staff/my-jobs").get_data(as_text=True)
    tickets.assign(job.id, tara.id, None, TUESDAY_10_NY)
    response = tap(client, job, "en_route", note="leaving now")
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"#{job.id} is no longer on your list (it is with Tara Net now): your tap changed nothing." in page
    assert "Server room switch dead" not in page  # the list as it is now
    assert (fresh(job).status, fresh(job).technician_id) == (TicketStatus.ASSIGNED, tara.id)


def test_a_job_waiting_on_the_client_reads_so_on_the_firms_pages(client, monkeypatch):
    """The board, the ticket page and the phone read 'Waiting on you', the client's words: the job
    seemed to wait on the dispatcher or on the technician whose card said 'Waiting on client:' above it."""
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    tap(client, job, "waiting_on_client", note="Need the server room key")
    phone = client.get("/staff/my-jobs").get_data(as_text=True)
    assert "<dt>Status</dt><dd>Waiting on the client</dd>" in phone
    response = tap(client, job, "waiting_on_client")
    assert "The ticket is already &#39;Waiting on the client&#39;." in response.get_data(as_text=True)
    for page in (client.get("/staff/").get_data(as_text=True),
                 client.get(f"/staff/tickets/{job.id}").get_data(as_text=True)):
        assert "Waiting on the client" in page
        assert "Waiting on you<" not in page and "<small>Waiting on you" not in page
    client.post("/auth/logout")
    login(client, "alice@acme.example")
    assert "Waiting on you" in client.get(f"/client/tickets/{job.id}").get_data(as_text=True)


def test_the_phone_and_the_ticket_page_say_the_client_reads_what_is_typed(client, monkeypatch):
    """The note box read 'Resolution note' and nothing more, yet what is typed goes on the client's
    timeline with any tap (and in the email for waiting on client and resolved); the staff reply box
    said the client reads it on the page, not that it is emailed to them."""
    acme, tom, tara, job = setup(monkeypatch)
    login(client, tom.user.email)
    phone = client.get("/staff/my-jobs").get_data(as_text=True)
    assert "The client reads it: it goes with the status you tap on their ticket's page" in phone
    tap(client, job, "waiting_on_client", note="Need the server room key")
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_waiting_on_client")).first()
    assert mail is not None and "Need the server room key" in mail.body
    page = client.get(f"/staff/tickets/{job.id}").get_data(as_text=True)
    assert "The client reads this on the ticket&#39;s page and gets it by email." in page
