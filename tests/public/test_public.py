from decimal import Decimal

import pytest

from portal.models import Role
from tests.conftest import login, make_organisation, make_plan, make_user


def seed_plans():
    make_plan("break-fix", name="Break/Fix")
    make_plan("essentials", name="Essentials", monthly_price=Decimal("490.50"), remote_response_minutes=240,
              onsite_arrival_minutes=480, hourly_rate=Decimal("125"), display_order=2, onboarding_fee=Decimal("250"))
    make_plan("premium-24-7", name="Premium 24/7", coverage="24x7", monthly_price=Decimal("2490"),
              remote_response_minutes=30, onsite_arrival_minutes=120, after_hours_emergencies=True, display_order=4)
    make_plan("retired", name="Retired", active=False)


def test_home_explains_the_promise(client):
    seed_plans()
    page = client.get("/").get_data(as_text=True)
    assert "Contract clients before break/fix clients" in page
    assert "Premium 24/7" in page


def test_plan_table_is_generated_from_the_database(client):
    seed_plans()
    page = client.get("/plans").get_data(as_text=True)
    assert "Connected remotely within 30 minutes" in page
    assert "Technician on site within 8 business hours" in page
    assert "Technician on site within 2 hours" in page
    assert "Best effort, usually the next business day: no guarantee" in page
    assert "Yes: emergencies page the on-call technician" in page
    assert "$2,490 a month" in page and "No monthly fee" in page
    # Every plan's onboarding fee is in the comparison, and a price is shown as it is billed.
    assert "<th scope=\"row\">Onboarding fee</th><td>None</td><td>$250 once, with the first payment</td><td>None</td>" in page
    assert "$490.50 a month" in page
    assert "Retired" not in page
    assert page.index("Break/Fix") < page.index("Essentials") < page.index("Premium 24/7")


def test_plan_detail_and_unknown_plan(client):
    seed_plans()
    assert "Premium 24/7" in client.get("/plans/premium-24-7").get_data(as_text=True)
    assert client.get("/plans/nope").status_code == 404
    assert client.get("/plans/retired").status_code == 404


def test_calculator_recommends_and_shows_arithmetic(client):
    seed_plans()
    response = client.get("/calculator?staff_affected=40&revenue_per_hour=17000&outages_per_year=4&staff_cost_per_hour=40")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "We recommend Premium 24/7" in page
    assert "Cost of an hour down: 40 staff x $40 + $17,000 revenue = $18,600" in page


def test_calculator_blank_form_and_bad_input(client):
    seed_plans()
    assert client.get("/calculator").status_code == 200
    response = client.get("/calculator?staff_affected=-3&revenue_per_hour=abc&outages_per_year=4&staff_cost_per_hour=40")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Staff who cannot work during an outage:" in page
    assert "Revenue at risk per hour of outage ($):" in page
    assert "We recommend" not in page


def test_plan_pages_offer_no_choose_button_to_staff(client):
    """Staff cannot buy a plan: the button led to the client's plan page, which refuses them (403)."""
    seed_plans()
    make_user("dispatcher@firm.test", role=Role.DISPATCHER)
    login(client, "dispatcher@firm.test")
    for url in ("/plans", "/plans/essentials"):
        page = client.get(url).get_data(as_text=True)
        assert "Choose Essentials" not in page
        assert "/client/plans/" not in page


def test_plan_pages_offer_the_choice_to_visitors_and_clients(client):
    seed_plans()
    assert 'href="/auth/signup?plan=essentials"' in client.get("/plans/essentials").get_data(as_text=True)
    make_user("admin@acme.test", organisation=make_organisation("Acme"))
    login(client, "admin@acme.test")
    for url in ("/plans", "/plans/essentials"):
        assert 'href="/client/plans/essentials"' in client.get(url).get_data(as_text=True)


def test_calculator_gives_one_message_per_typo(client):
    seed_plans()
    page = client.get("/calculator?staff_affected=12&revenue_per_hour=abc&outages_per_year=4&staff_cost_per_hour=40").get_data(as_text=True)
    assert page.count("Revenue at risk per hour of outage ($):") == 1
    assert "Enter an amount, e.g. 1250 or 1,250.50." in page
    assert 'value="abc"' in page  # what the visitor typed is kept


@pytest.mark.parametrize("typed", ["sNaN", "NaN", "1e3", "Infinity", "12.3.4", "$"])
def test_calculator_refuses_what_is_not_an_amount_as_written(client, typed):
    """Decimal reads all of these; "sNaN" could not be compared with the range and answered 500."""
    seed_plans()
    response = client.get("/calculator", query_string={
        "staff_affected": "12", "revenue_per_hour": typed, "outages_per_year": "4", "staff_cost_per_hour": "40"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert page.count("Revenue at risk per hour of outage ($):") == 1
    assert "We recommend" not in page


def test_calculator_reads_amounts_as_people_write_them(client):
    seed_plans()
    page = client.get("/calculator", query_string={
        "staff_affected": "40", "revenue_per_hour": "$17,000.00", "outages_per_year": "4",
        "staff_cost_per_hour": " 40 "}).get_data(as_text=True)
    assert "Cost of an hour down: 40 staff x $40 + $17,000 revenue = $18,600" in page


def test_calculator_refuses_a_number_too_long_to_be_meant_with_one_message(client):
    """2,000 digits parsed into an int the range check could not compare: it answered 500."""
    seed_plans()
    response = client.get(f"/calculator?staff_affected={'1' * 2000}&revenue_per_hour=100&outages_per_year=4"
                          "&staff_cost_per_hour=40")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert page.count("Staff who cannot work during an outage:") == 1
    assert "Enter a number of at most 12 digits." in page and "We recommend" not in page


def test_calculator_empty_field_is_named_as_required(client):
    seed_plans()
    page = client.get("/calculator?staff_affected=&revenue_per_hour=100&outages_per_year=4&staff_cost_per_hour=40").get_data(as_text=True)
    assert "Staff who cannot work during an outage: This field is required." in page
    assert "Not a valid integer value" not in page
    page = client.get("/calculator?staff_affected=4&revenue_per_hour=100&outages_per_year=4&staff_cost_per_hour=").get_data(as_text=True)
    assert "Cost of one idle employee per hour ($): This field is required." in page
    assert "Not a valid decimal value" not in page


def test_plan_table_tells_phone_users_it_scrolls(client):
    seed_plans()
    assert "Swipe the table sideways to see all 3 plans." in client.get("/plans").get_data(as_text=True)


def test_plan_pages_show_a_client_in_its_minimum_term_why_a_cheaper_plan_is_not_on_offer(client, monkeypatch):
    """Acme (Premium 24/7, term to 14 Mar 2027) was offered Essentials and refused only after the click."""
    from tests.client.test_plan_choice import TERM_REASON, acme_in_its_term

    acme_in_its_term(client, monkeypatch)
    table = client.get("/plans").get_data(as_text=True)
    assert 'href="/client/plans/essentials"' not in table and 'href="/client/plans/priority"' not in table
    assert table.count(TERM_REASON) == 2 and "Upgrades are possible at any time." in table
    assert 'href="/client/plans/enterprise"' in table  # an upgrade is always possible
    assert "You are already on Premium 24/7." in table and 'href="/client/plans/premium"' not in table
    detail = client.get("/plans/essentials").get_data(as_text=True)
    assert 'href="/client/plans/essentials"' not in detail and TERM_REASON in detail
    assert 'href="/client/plans/enterprise"' in client.get("/plans/enterprise").get_data(as_text=True)


def test_plan_pages_show_a_pending_request_in_place_of_another_choice(client, monkeypatch):
    from tests.client.test_plan_choice import bolt_with_a_request_waiting

    bolt_with_a_request_waiting(client, monkeypatch)
    reason = "You already have a plan request waiting for confirmation: Priority, sent 2 Dec 2026."
    table = client.get("/plans").get_data(as_text=True)
    assert "/client/plans/premium" not in table and "/client/plans/essentials" not in table and reason in table
    detail = client.get("/plans/premium").get_data(as_text=True)
    assert "/client/plans/premium" not in detail and reason in detail
    assert "Withdraw the request for Priority" in detail


def test_plan_pages_offer_every_plan_to_a_free_client(client, monkeypatch):
    from tests.client.test_plan_choice import DEC_2_NY, plans
    from tests.client.helpers import set_clock

    set_clock(monkeypatch, DEC_2_NY)
    plans()
    make_user("admin@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "admin@bolt.example")
    table = client.get("/plans").get_data(as_text=True)
    for slug in ("essentials", "priority", "premium", "enterprise"):
        assert f'href="/client/plans/{slug}"' in table
    assert "waiting for confirmation" not in table and "minimum term that runs" not in table


def test_a_plan_sold_in_another_currency_shows_that_currency_wherever_it_is_priced(client):
    """Stripe charges a plan in its own currency (plan.currency, set on the staff plan form); the
    pages said '$' whatever it was, so a plan billed €490 read '$490 a month'."""
    from tests.conftest import login, make_organisation, make_plan, make_user

    make_plan("priority", name="Priority", monthly_price=Decimal("490"), currency="eur",
              onboarding_fee=Decimal("250"), hourly_rate=Decimal("95"))
    make_plan("premium", name="Premium", monthly_price=Decimal("2490"), currency="gbp", display_order=3)
    page = client.get("/plans").get_data(as_text=True)
    assert "€490 a month" in page and "€250 once" in page and "€95 an hour" in page and "£2,490 a month" in page
    assert "$490" not in page and "$2,490" not in page
    make_user("admin@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "admin@bolt.example")
    billing = client.get("/billing/").get_data(as_text=True)
    assert "€490 a month" in billing and "$490" not in billing


def test_a_target_of_hours_and_minutes_is_shown_exactly(client):
    """An owner's 100-minute response target read 'within 1.7 business hours' (102 minutes) on the plans page."""
    make_plan("priority", name="Priority", remote_response_minutes=100, onsite_arrival_minutes=135)
    make_plan("premium-24-7", name="Premium 24/7", coverage="24x7", remote_response_minutes=61,
              onsite_arrival_minutes=90, after_hours_emergencies=True)
    page = client.get("/plans").get_data(as_text=True)
    assert "Connected remotely within 1 business hour 40 minutes" in page
    assert "Technician on site within 2 business hours 15 minutes" in page
    assert "Connected remotely within 1 hour 1 minute" in page
    assert "Technician on site within 1 hour 30 minutes" in page
