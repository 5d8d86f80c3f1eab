"""Load benchmark: the client's ticket status page and its live.json with 1,000 open tickets,
against /healthz (same app, no database) as the baseline, measured in the same run.

    .venv/bin/python bench/load.py [--database-url URL] [--tickets 1000] [--duration 10] [--connections 20]

Builds a fresh database (`flask db upgrade`, `flask seed-demo`, then the extra open tickets and
one queue recompute), serves it with gunicorn and the production gunicorn.conf.py on
127.0.0.1, logs in as the demo's Acme admin and drives each page with wrk (Debian's `wrk`;
a Python threaded client when wrk is missing) for a bounded time. Prints a table and writes
bench/results/load.json. Targets (issue 8): status page at half or more of the baseline's
requests/s and p99 under 100 ms at 20 concurrent users.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import build_database, gunicorn, portal_env  # noqa: E402

DEMO_PASSWORD = "demo-pass-2026"
RESULTS = ROOT / "bench" / "results" / "load.json"


def add_open_tickets(database_url: str, count: int) -> None:
    """`count` open tickets spread over the demo organisations, each under its contract, then one recompute."""
    from sqlalchemy import select

    from portal import create_app
    from portal.extensions import db
    from portal.models import Organisation, Ticket
    from portal.services import queue, sla

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SQLALCHEMY_ENGINE_OPTIONS": {}})
    now = datetime.now(timezone.utc)
    with app.app_context():
        organisations = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
        plans = {org.id: sla.current_plan(org.id) for org in organisations}
        categories = ("hardware", "software", "network", "printer", "email", "other")
        for i in range(count):
            org = organisations[i % len(organisations)]
            ticket = Ticket(organisation_id=org.id, title=f"Benchmark ticket {i}", description="Load benchmark.",
                            category=categories[i % len(categories)], impact=("person", "department", "company")[i % 3],
                            revenue_at_risk_per_hour=Decimal(25 * (i % 40)), onsite_needed=i % 3 == 0,
                            safety_critical=i % 97 == 0, opened_at=now - timedelta(minutes=i % 600), updated_at=now)
            db.session.add(ticket)
            db.session.flush()
            sla.apply_plan(ticket, plans[org.id], ticket.opened_at, now)
        db.session.commit()
        queue.recompute(now)
        db.session.remove()
        db.engine.dispose()


def log_in(base_url: str, email: str) -> str:
    """Log in through the form (CSRF token included); returns the Cookie header value."""
    import requests

    session = requests.Session()
    page = session.get(f"{base_url}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    response = session.post(f"{base_url}/auth/login", timeout=30, allow_redirects=False,
                            data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1) if token else ""})
    if response.status_code != 302:
        raise SystemExit(f"log-in as {email} failed: HTTP {response.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def pick_ticket(base_url: str, cookie: str) -> tuple[int, int, int]:
    """The Acme ticket furthest down the queue: (ticket id, its place, queue length)."""
    import requests

    body = requests.get(f"{base_url}/api/v1/tickets", headers={"Cookie": cookie}, timeout=60).json()
    placed = [t for t in body["tickets"] if t["position"] is not None]
    worst = max(placed, key=lambda t: t["position"])
    return worst["id"], worst["position"], body["queue_length"]


def run_wrk(url: str, headers: dict[str, str], seconds: int, connections: int, threads: int) -> dict:
    script = ROOT / "bench" / "wrk_report.lua"
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("{"))
    raw = json.loads(line)
    return {
        "requests": raw["requests"],
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000, "errors": raw["errors"], "non_2xx": raw["non_2xx"], "client": "wrk",
    }


def run_python(url: str, headers: dict[str, str], seconds: int, connections: int, threads: int) -> dict:
    """A threaded keep-alive client for machines without wrk (slower: it competes with the server for CPU)."""
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = non_2xx = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def user() -> None:
        nonlocal errors, non_2xx
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine: list[float] = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                conn.request("GET", parts.path, headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if not (200 <= response.status < 300 or response.status == 304):
                    with lock:
                        non_2xx += 1
            except (OSError, http.client.HTTPException):
                with lock:
                    errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    pool = [threading.Thread(target=user) for _ in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {"requests": len(latencies), "requests_per_s": len(latencies) / elapsed, "p50_ms": pct(50),
            "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": ordered[-1] * 1000, "errors": errors,
            "non_2xx": non_2xx, "client": "python-threads"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL of a database the benchmark may drop and re-create (default: SQLite in a temp dir)")
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per page")
    parser.add_argument("--connections", type=int, default=20, help="concurrent users")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    env = portal_env(database_url, RATELIMIT_ENABLED="false")
    print(f"building the database ({database_url.split('@')[-1]}) with {args.tickets} extra open tickets ...", flush=True)
    started = time.monotonic()
    build_database(env)
    add_open_tickets(database_url, args.tickets)
    print(f"  ready in {time.monotonic() - started:.0f} s", flush=True)

    workers = args.workers or (os.cpu_count() or 1) * 2 + 1
    use_wrk = shutil.which("wrk") is not None
    drive = run_wrk if use_wrk else run_python
    with gunicorn(env, tmp / "gunicorn.log", workers=workers, threads=args.threads) as server:
        cookie = log_in(server.base_url, "admin@acme.demo.test")
        ticket_id, place, queue_length = pick_ticket(server.base_url, cookie)
        import requests

        live_path = f"/client/tickets/{ticket_id}/live.json"
        etag = requests.get(server.base_url + live_path, headers={"Cookie": cookie}, timeout=30).headers.get("ETag", "")
        pages = {  # name: (path, extra headers)
            "minimal (/healthz, no database)": ("/healthz", {}),
            "ticket status page": (f"/client/tickets/{ticket_id}", {}),
            "ticket live.json": (live_path, {}),
            "live.json unchanged (304)": (live_path, {"If-None-Match": etag}),
        }
        for path, extra in pages.values():  # warm every worker's imports, templates and pool
            for _ in range(workers * 4):
                status = requests.get(server.base_url + path, headers={"Cookie": cookie, **extra}, timeout=30).status_code
                assert status in (200, 304), (path, status)
        results = {}
        for name, (path, extra) in pages.items():
            print(f"driving {name} for {args.duration} s with {args.connections} users ...", flush=True)
            results[name] = {"path": path, **drive(server.base_url + path, {"Cookie": cookie, **extra},
                                                   args.duration, args.connections, 2)}

    baseline = results["minimal (/healthz, no database)"]["requests_per_s"]
    page = results["ticket status page"]
    live = results["ticket live.json"]
    unchanged = results["live.json unchanged (304)"]
    report = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
                    "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()]},
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "open_tickets": queue_length, "ticket_place": place, "concurrent_users": args.connections,
        "seconds_per_page": args.duration, "gunicorn": {"workers": workers, "threads": args.threads},
        "client": "wrk" if use_wrk else "python-threads",
        "pages": results,
        "ratio_status_page_to_minimal": page["requests_per_s"] / baseline,
        "ratio_live_json_to_minimal": live["requests_per_s"] / baseline,
        "ratio_live_json_304_to_minimal": unchanged["requests_per_s"] / baseline,
        "targets": {
            "status_page_at_least_half_of_minimal": page["requests_per_s"] >= 0.5 * baseline,
            "status_page_p99_under_100_ms": page["p99_ms"] < 100,
            "live_json_p99_under_100_ms": live["p99_ms"] < 100,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(f"{report['database']}, {queue_length} tickets waiting (ours at place {place}), {args.connections} users, "
          f"gunicorn {workers}x{args.threads}, {report['client']}")
    print(f"{'page':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs minimal':>11}")
    for name, r in results.items():
        print(f"{name:34} {r['requests_per_s']:8.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
              f"{r['errors'] + r['non_2xx']:7d} {r['requests_per_s'] / baseline:10.0%}")
    print(f"targets: {json.dumps(report['targets'])}")
    print(f"machine load average at the end: {report['machine']['load_average_1_5_15_min']} on {os.cpu_count()} cores "
          "(other processes skew the figures; the ratios, taken in the same run, less so)")
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
