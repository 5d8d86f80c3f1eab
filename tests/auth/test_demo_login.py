"""The README's demo logins (@demo.test, a reserved domain) must be able to log in."""
from portal.demo import DEMO_PASSWORD, seed_demo
from tests.conftest import login


def test_every_demo_login_works(app, client, now):
    from portal.demo import DEMO_LOGINS

    seed_demo(now)
    for email, _ in DEMO_LOGINS:
        response = login(client, email, DEMO_PASSWORD)
        assert response.status_code == 302, f"{email}: {response.status_code}"
        client.post("/auth/logout")


def test_log_in_still_names_a_malformed_address(client):
    response = login(client, "not-an-address", "whatever-password")
    assert response.status_code in (200, 400)
    assert "Enter the address you signed up with" in response.get_data(as_text=True)


def test_demo_accounts_can_ask_for_a_password_reset(app, client, now):
    """The reset form refused @demo.test ("Invalid email address.") so a demo user could never reset."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import OutboxMessage

    seed_demo(now)
    response = client.post("/auth/reset", data={"email": "admin@bolt.demo.test"}, follow_redirects=True)
    assert "If an account exists for that address" in response.get_data(as_text=True)
    bodies = [m.body for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "admin@bolt.demo.test"))]
    assert any("/auth/reset/" in body for body in bodies)


def test_reset_still_names_a_malformed_address(client):
    response = client.post("/auth/reset", data={"email": "not-an-address"})
    assert response.status_code == 400
    assert "Enter the address you signed up with" in response.get_data(as_text=True)
