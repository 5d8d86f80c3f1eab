"""Sign-ups never confirmed are removed a week after their last link, so no address stays held."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Invitation, Organisation, Role, User
from portal.services import accounts
from tests.conftest import PASSWORD, make_organisation, make_user

SIGNED_UP = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
WEEK = accounts.UNCONFIRMED_KEPT


def sign_up(email: str = "hana@harbor.example", at: datetime = SIGNED_UP) -> User:
    accounts.sign_up(accounts.SignUp("Harbor Clinic", "5 Harbor Rd", "Hana Admin", email, PASSWORD), at)
    return accounts.find_user(email)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_an_unconfirmed_sign_up_goes_a_week_after_its_link_and_frees_the_address(app):
    sign_up()
    assert accounts.purge_unconfirmed_sign_ups(SIGNED_UP + WEEK - timedelta(minutes=1)) == 0
    assert count(User) == count(Organisation) == 1
    assert accounts.purge_unconfirmed_sign_ups(SIGNED_UP + WEEK + timedelta(minutes=1)) == 1
    assert count(User) == count(Organisation) == 0
    again = sign_up(at=SIGNED_UP + WEEK + timedelta(hours=1))
    assert again is not None and again.email_confirmed_at is None


def test_a_link_sent_again_keeps_the_sign_up_a_week_from_then(app):
    sign_up()
    accounts.resend_confirmation("hana@harbor.example", SIGNED_UP + timedelta(days=6))
    assert accounts.purge_unconfirmed_sign_ups(SIGNED_UP + timedelta(days=8)) == 0
    assert accounts.purge_unconfirmed_sign_ups(SIGNED_UP + timedelta(days=13, minutes=1)) == 1


def test_confirmed_and_invited_accounts_and_sign_ups_in_use_stay(app):
    later = SIGNED_UP + 3 * WEEK
    confirmed = make_user("kept@harbor.example", organisation=make_organisation("Kept Co"))
    confirmed.created_at = SIGNED_UP
    staff = make_user("dispatcher@firm.example", role=Role.DISPATCHER)
    staff.created_at = SIGNED_UP
    in_use = sign_up("busy@harbor.example")
    db.session.add(Invitation(organisation_id=in_use.organisation_id, email="colleague@harbor.example",
                              role=Role.CLIENT_MEMBER, token_hash="x" * 64, invited_by_id=in_use.id,
                              created_at=SIGNED_UP, expires_at=SIGNED_UP + WEEK))
    db.session.commit()
    assert accounts.purge_unconfirmed_sign_ups(later) == 0
    assert count(User) == 3 and count(Organisation) == 2


def test_the_command_reports_what_it_removed(app, monkeypatch):
    sign_up()
    monkeypatch.setattr("portal.clock.now", lambda: SIGNED_UP + 2 * WEEK)
    result = app.test_cli_runner().invoke(args=["accounts", "purge-unconfirmed"])
    assert result.exit_code == 0, result.output
    assert "1 unconfirmed sign-ups removed" in result.output
    assert count(User) == 0
