"""An organisation's account activity: who invited, removed, restored or changed whom, and who made
or revoked an API token. Written in the same transaction as the change it records, so the log and
the accounts never disagree; read by the organisation's admins on the users page."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import select

from ..extensions import db
from ..models import AccountEvent, User

SHOWN = 50


def named(user: User) -> str:
    """How the users page, its messages and this log name a person."""
    return f"{user.full_name} ({user.email})" if user.full_name else user.email


def record(organisation_id: Optional[int], kind: str, message: str, now: datetime,
           actor: Optional[User] = None, subject: Optional[User] = None) -> None:
    """Add the entry to the session; the caller's commit saves it with the change. Staff accounts
    (no organisation) have no organisation log."""
    if organisation_id is None:
        return
    db.session.add(AccountEvent(organisation_id=organisation_id, at=now, kind=kind, message=message,
                                actor_id=actor.id if actor is not None else None,
                                subject_id=subject.id if subject is not None else None))


def recent(organisation_id: int, limit: int = SHOWN) -> list[AccountEvent]:
    """The newest entries first."""
    return list(db.session.scalars(
        select(AccountEvent).where(AccountEvent.organisation_id == organisation_id)
        .order_by(AccountEvent.at.desc(), AccountEvent.id.desc()).limit(limit)
    ))
