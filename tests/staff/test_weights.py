"""Triage weights: the owner edits them, the domain validates them, a refusal names the field and saves nothing."""
from sqlalchemy import select

from portal.domain.triage import TriageWeights
from portal.extensions import db
from portal.models import Role, Setting
from portal.services import settings
from tests.staff.helpers import staff


def form(**changes) -> dict:
    data = {k: str(v) for k, v in TriageWeights().to_dict().items()}
    data.update(changes)
    return data


def stored() -> Setting | None:
    db.session.expire_all()
    return db.session.scalars(select(Setting).where(Setting.key == settings.TRIAGE_WEIGHTS_KEY)).first()


def test_owner_sees_and_saves_the_weights(client):
    staff(client, Role.OWNER)
    page = client.get("/staff/settings/triage").get_data(as_text=True)
    assert "Points when the whole company is affected" in page and 'value="100.0"' in page
    response = client.post("/staff/settings/triage", data=form(safety_critical="300", impact_person="5"))
    assert response.status_code == 302
    assert settings.triage_weights().safety_critical == 300.0
    assert stored().value["impact_person"] == 5.0
    assert 'value="300.0"' in client.get("/staff/settings/triage").get_data(as_text=True)


def test_invalid_weights_name_the_field_and_change_nothing(client):
    staff(client, Role.OWNER)
    client.post("/staff/settings/triage", data=form(safety_critical="300"))
    cases = [
        (form(impact_company="10"), "impact_company", "must be at least the department points"),
        (form(sla_horizon_hours="0"), "sla_horizon_hours", "must be at least a minute"),
        (form(cost_before_due_share="5"), "cost_before_due_share", "between 0 and 1"),
        (form(deadline_horizon_hours="1e-300"), "deadline_horizon_hours", "must be at least a minute"),
        (form(effort_floor_minutes="1e-300"), "effort_floor_minutes", "must be at least a minute"),
        (form(revenue_cap="-5"), "revenue_cap", "must not be negative"),
        (form(deadline_max="lots"), "deadline_max", "Not a valid float value"),
        (form(effort_cap_hours=""), "effort_cap_hours", "Give a number"),
    ]
    for data, key, message in cases:
        response = client.post("/staff/settings/triage", data=data)
        html = response.get_data(as_text=True)
        assert response.status_code == 400, key
        # The message sits in the field's own error paragraph, and the typed values stay in the form.
        assert f'id="{key}-error"' in html and message in html.split(f'id="{key}-error"')[1].split("</p>")[0], key
        if data[key]:
            assert f'value="{data[key]}"' in html, key
        assert stored().value["safety_critical"] == 300.0
        assert settings.triage_weights().impact_company == 100.0


def test_only_the_owner_edits_weights(client):
    staff(client, Role.DISPATCHER)
    assert client.get("/staff/settings/triage").status_code == 403
    assert client.post("/staff/settings/triage", data=form(safety_critical="1")).status_code == 403
    assert stored() is None
