"""Command-line tasks: `flask seed-demo`, `flask outbox deliver`, `flask backup`, `flask accounts purge-unconfirmed`."""
from __future__ import annotations

import time as _time

import click
from flask import Flask, current_app

from . import clock
from .extensions import db
from .services import outbox


def register_cli(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Load demo plans, staff, clients and open tickets (safe to re-run)."""
        from .demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo

        created = seed_demo(clock.now())
        click.echo(f"Demo data ready ({created} new records).")
        click.echo(f"Demo logins (password {DEMO_PASSWORD}):")
        for email, what in DEMO_LOGINS:
            click.echo(f"  {email:28} {what}")

    outbox_group = click.Group("outbox", help="The email outbox.")
    app.cli.add_command(outbox_group)

    @outbox_group.command("deliver")
    @click.option("--loop", is_flag=True, help="Keep delivering every few seconds until stopped.")
    @click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds with --loop.")
    def deliver_command(loop: bool, interval: float) -> None:
        """Send the emails that are due; failed ones stay queued for retry."""
        send = outbox.smtp_sender(current_app.config)
        while True:
            sent, failed = outbox.deliver_due(send, clock.now())
            if sent or failed or not loop:
                click.echo(f"outbox: {sent} sent, {failed} failed")
            if not loop:
                return
            db.session.remove()
            _time.sleep(interval)

    alerts_group = click.Group("alerts", help="Staff alerts: SLA at risk or breached, to the dispatchers.")
    app.cli.add_command(alerts_group)

    @alerts_group.command("check")
    @click.option("--loop", is_flag=True, help="Keep checking every interval until stopped.")
    @click.option("--interval", default=60.0, show_default=True, help="Seconds between rounds with --loop.")
    def alerts_check_command(loop: bool, interval: float) -> None:
        """Re-run the queue (time passing moves estimates: nothing else does while no ticket changes,
        and a stored "expected around 08:05" would stay on the pages after 08:05), refresh every open
        ticket's SLA state (time passing makes tickets at risk), then email the dispatchers about
        tickets newly at risk or breached (once per ticket and state)."""
        from .services import alerts, queue, sla, staff

        while True:
            now = clock.now()
            staff.time_off_begun(now)  # time off entered ahead that has just begun gives its tickets back
            queue.recompute(now)
            refreshed = sla.refresh_states(now)
            result = alerts.check_sla(now)
            if result.tickets_alerted or refreshed.breaches or not loop:
                click.echo(f"alerts: {refreshed.breaches} new breaches; "
                           f"{result.tickets_alerted} tickets, {result.emails} emails")
            if not loop:
                return
            db.session.remove()
            _time.sleep(interval)

    @app.cli.command("backup")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--force", is_flag=True, help="Replace an existing file at PATH.")
    def backup_command(path: str, force: bool) -> None:
        """Write a consistent copy of the SQLite database to PATH (attachments to PATH.attachments/).

        On PostgreSQL it writes nothing and prints the pg_dump command to use instead."""
        from pathlib import Path

        from .services import backup

        try:
            result = backup.backup_database(db.engine, Path(path), current_app.config.get("UPLOAD_FOLDER"), force)
        except backup.BackupError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"backup: {result.path} ({result.size_bytes} bytes, {sum(result.rows.values())} rows "
                   f"in {len(result.rows)} tables)")
        if result.attachments_path is not None:
            click.echo(f"attachments: {result.attachments_copied} new files in {result.attachments_path}")

    accounts_group = click.Group("accounts", help="Client accounts.")
    app.cli.add_command(accounts_group)

    @accounts_group.command("purge-unconfirmed")
    def purge_unconfirmed_command() -> None:
        """Remove sign-ups left unconfirmed for 7 days after their last confirmation link (run daily)."""
        from .services import accounts

        click.echo(f"accounts: {accounts.purge_unconfirmed_sign_ups(clock.now())} unconfirmed sign-ups removed")

    queue_group = click.Group("queue", help="The live queue: triage and dispatch of every waiting ticket.")
    app.cli.add_command(queue_group)

    @queue_group.command("recompute")
    def queue_recompute_command() -> None:
        """Re-run triage and dispatch now (e.g. when a shift starts) and save the places and estimates."""
        from .services import queue, staff

        now = clock.now()
        staff.time_off_begun(now)
        generation = queue.recompute(now)
        click.echo(f"queue: generation {generation}, {queue.waiting_count()} tickets waiting")

    sla_group = click.Group("sla", help="SLA clocks of open tickets.")
    app.cli.add_command(sla_group)

    @sla_group.command("check")
    def sla_check_command() -> None:
        """Refresh every open ticket's SLA state, record new breaches, and alert the dispatchers (once per state)."""
        from .services import alerts, sla

        now = clock.now()
        refreshed = sla.refresh_states(now)
        result = alerts.check_sla(now)
        click.echo(f"sla: {refreshed.tickets} open tickets, {refreshed.breaches} new breaches; "
                   f"{result.tickets_alerted} tickets alerted, {result.emails} emails")
