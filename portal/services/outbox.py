"""Email outbox: messages are written in the caller's transaction and delivered by a worker.

A message is only marked sent after the SMTP server accepted it, so a crash or an
SMTP outage leaves it in the table to be retried with back-off.
"""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Callable, Optional

from sqlalchemy import select

from ..extensions import db
from ..models import OutboxMessage

log = logging.getLogger("portal.outbox")
MAX_BACKOFF = timedelta(hours=1)


def enqueue(recipient: str, subject: str, body: str, kind: str, now: datetime) -> OutboxMessage:
    """Add an email to the current transaction; the caller commits it with its change."""
    message = OutboxMessage(
        recipient=recipient, subject=subject[:300], body=body, kind=kind, created_at=now, next_attempt_at=now
    )
    db.session.add(message)
    return message


Sender = Callable[[OutboxMessage], None]


def smtp_sender(config: dict) -> Sender:
    """Send through SMTP when SMTP_HOST is set; otherwise write the email to the log (development)."""
    if not config.get("SMTP_HOST"):
        def to_log(message: OutboxMessage) -> None:
            log.info("EMAIL to %s: %s\n%s", message.recipient, message.subject, message.body)
        return to_log

    def send(message: OutboxMessage) -> None:
        email = EmailMessage()
        email["From"] = config["MAIL_FROM"]
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email.set_content(message.body)
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=15) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USERNAME"):
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(email)
    return send


def deliver_due(send: Sender, now: datetime, limit: int = 100) -> tuple[int, int]:
    """Deliver messages that are due; returns (sent, failed). Each message commits on its own."""
    ids = db.session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    sent = failed = 0
    for message_id in ids:
        message = _claim(message_id, now)
        if message is None:
            continue
        try:
            send(message)
        except Exception as error:  # any transport failure: keep the message and retry later
            message.attempts += 1
            message.last_error = f"{type(error).__name__}: {error}"[:2000]
            message.next_attempt_at = now + min(MAX_BACKOFF, timedelta(minutes=2 ** min(message.attempts, 10)))
            failed += 1
            log.warning("delivery of outbox message %s failed: %s", message.id, message.last_error)
        else:
            message.attempts += 1
            message.sent_at = now
            sent += 1
        db.session.commit()
    return sent, failed


def _claim(message_id: int, now: datetime) -> Optional[OutboxMessage]:
    """Lock one message so two workers never send it twice (row lock on PostgreSQL)."""
    query = select(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.sent_at.is_(None))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.scalars(query).first()
