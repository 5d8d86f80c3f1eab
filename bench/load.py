"""Load benchmark: the client's ticket status page and its live.json with 1,000 open tickets,
against /healthz (same app, no database) as the baseline, measured in the same run.

    .venv/bin/python bench/load.py [--database-url URL] [--redis-url URL] [--tickets 1000] [--duration 5] [--rounds 3] [--connections 20]

Builds a fresh database (`flask db upgrade`, `flask seed-demo`, then the extra open tickets and
one queue recompute), serves it with gunicorn and the production gunicorn.conf.py on
127.0.0.1, logs in as the demo's Acme admin and drives each page with wrk (Debian's `wrk`;
a Python threaded client when wrk is missing) for a bounded time. Two runs, each with its own
baseline: "kept" as in production with REDIS_URL (a reload between two writes is served from
the worker's memory, portal/page_cache.py), and "rendered" with the page cache off, which is
what every first load after a write costs. Prints a table and writes bench/results/load.json.
Targets (issue 8): status page at half or more of the baseline's requests/s and p99 under
100 ms at 20 concurrent users.
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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import build_database, gunicorn, portal_env  # noqa: E402

if TYPE_CHECKING:
    import requests

DEMO_PASSWORD = "demo-pass-2026"
RESULTS = ROOT / "bench" / "results" / "load.json"
# One browser throughout: Flask-Login's session protection compares the address and browser of
# every request with the log-in's (a different one marks the session not fresh, on every request).
USER_AGENT = "portal-load-bench"
MINIMAL = "minimal (/healthz, no database)"
PAGES = ("ticket status page", "ticket live.json", "live.json unchanged (304)")


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


def log_in(base_url: str, email: str) -> "requests.Session":
    """Log in through the form (CSRF token included); the session keeps its cookie up to date, as a browser."""
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    page = session.get(f"{base_url}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    response = session.post(f"{base_url}/auth/login", timeout=30, allow_redirects=False,
                            data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1) if token else ""})
    if response.status_code != 302:
        raise SystemExit(f"log-in as {email} failed: HTTP {response.status_code}")
    return session


def cookie_header(session: "requests.Session") -> dict[str, str]:
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in session.cookies), "User-Agent": USER_AGENT}


def pick_ticket(base_url: str, browser: "requests.Session") -> tuple[int, int, int]:
    """The Acme ticket furthest down the queue: (ticket id, its place, queue length)."""
    body = browser.get(f"{base_url}/api/v1/tickets", timeout=60).json()
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


def median_of(rounds: list[dict]) -> dict:
    """Each figure's median over the rounds (errors summed), the rounds themselves kept for the record."""
    figures = ("requests_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms")
    summary: dict = {name: statistics.median(r[name] for r in rounds) for name in figures}
    summary.update(requests=sum(r["requests"] for r in rounds), errors=sum(r["errors"] for r in rounds),
                   non_2xx=sum(r["non_2xx"] for r in rounds), worst_p99_ms=max(r["p99_ms"] for r in rounds),
                   rounds=rounds)
    return summary


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def measure(env: dict[str, str], log_path: Path, workers: int, args: argparse.Namespace,
            pages_wanted: tuple[str, ...]) -> dict:
    """Serve `env` with gunicorn and drive the baseline and each wanted page for `args.duration` seconds."""
    drive = run_wrk if shutil.which("wrk") else run_python
    with gunicorn(env, log_path, workers=workers, threads=args.threads) as server:
        browser = log_in(server.base_url, "admin@acme.demo.test")
        ticket_id, place, queue_length = pick_ticket(server.base_url, browser)
        live_path = f"/client/tickets/{ticket_id}/live.json"
        etag = browser.get(server.base_url + live_path, timeout=30).headers.get("ETag", "")
        every_page = {  # name: (path, extra headers)
            MINIMAL: ("/healthz", {}),
            "ticket status page": (f"/client/tickets/{ticket_id}", {}),
            "ticket live.json": (live_path, {}),
            "live.json unchanged (304)": (live_path, {"If-None-Match": etag}),
        }
        pages = {name: every_page[name] for name in (MINIMAL, *pages_wanted)}
        for path, extra in pages.values():  # the browser's cookie as it settles after a first visit
            assert browser.get(server.base_url + path, headers=extra, timeout=30).status_code in (200, 304), path
        headers = cookie_header(browser)  # wrk replays the cookie as the browser last had it
        import requests

        for path, extra in pages.values():  # a new connection each time reaches every worker: all warm
            for _ in range(workers * 8):
                status = requests.get(server.base_url + path, headers={**headers, **extra}, timeout=30).status_code
                assert status in (200, 304), (path, status)
        rounds: dict[str, list[dict]] = {name: [] for name in pages}
        for round_number in range(1, args.rounds + 1):  # interleaved: a noisy moment hits every page alike
            print(f"  round {round_number}/{args.rounds}: each page for {args.duration} s with "
                  f"{args.connections} users ...", flush=True)
            for name, (path, extra) in pages.items():
                rounds[name].append(drive(server.base_url + path, {**headers, **extra},
                                          args.duration, args.connections, 2))
        results = {name: {"path": pages[name][0], **median_of(measured)} for name, measured in rounds.items()}
    baseline = results[MINIMAL]["requests_per_s"]
    for result in results.values():
        result["ratio_to_minimal"] = result["requests_per_s"] / baseline
    return {"ticket_place": place, "open_tickets": queue_length, "pages": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL of a database the benchmark may drop and re-create (default: SQLite in a temp dir)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="Redis for the data version of kept pages (skipped when it does not answer)")
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per page and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all pages; the table shows medians")
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
    runs = {}
    if redis_answers(args.redis_url):
        print(f"pages kept between writes (REDIS_URL={args.redis_url}):", flush=True)
        runs["kept"] = measure(dict(env, REDIS_URL=args.redis_url), tmp / "kept.log", workers, args, PAGES)
    else:
        print(f"Redis does not answer at {args.redis_url}: only rendered pages are measured", flush=True)
    print("every request rendered (no page kept: PAGE_CACHE_SECONDS=0):", flush=True)
    runs["rendered"] = measure(dict(env, PAGE_CACHE_SECONDS="0"), tmp / "rendered.log", workers, args, PAGES)

    served = runs.get("kept", runs["rendered"])
    page = served["pages"]["ticket status page"]
    report = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(),
                    "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()]},
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "open_tickets": served["open_tickets"], "ticket_place": served["ticket_place"],
        "concurrent_users": args.connections, "seconds_per_page_and_round": args.duration, "rounds": args.rounds,
        "gunicorn": {"workers": workers, "threads": args.threads},
        "client": "wrk" if shutil.which("wrk") else "python-threads",
        "runs": runs,
        "targets": {
            "status_page_at_least_half_of_minimal": page["ratio_to_minimal"] >= 0.5,
            "status_page_p99_under_100_ms": page["p99_ms"] < 100,
            "live_json_p99_under_100_ms": served["pages"]["ticket live.json"]["p99_ms"] < 100,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(f"{report['database']}, {served['open_tickets']} tickets waiting (ours at place {served['ticket_place']}), "
          f"{args.connections} users, gunicorn {workers}x{args.threads}, {report['client']}")
    print(f"medians of {args.rounds} rounds of {args.duration} s per page (worst p99 of the rounds in the last column)")
    print(f"{'run':9} {'page':30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs minimal':>11} {'worst p99':>10}")
    for run_name, run in runs.items():
        for name, r in run["pages"].items():
            print(f"{run_name:9} {name:30} {r['requests_per_s']:8.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
                  f"{r['errors'] + r['non_2xx']:7d} {r['ratio_to_minimal']:10.0%} {r['worst_p99_ms']:10.1f}")
    print(f"targets ({'kept' if 'kept' in runs else 'rendered'} run): {json.dumps(report['targets'])}")
    print(f"machine load average at the end: {report['machine']['load_average_1_5_15_min']} on {os.cpu_count()} cores "
          "(other processes skew the figures; the ratios, taken in the same run, less so)")
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
