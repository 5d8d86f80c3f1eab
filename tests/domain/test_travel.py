import pytest
from hypothesis import given, strategies as st

from portal.domain.travel import Location, TravelModel, distance_km

MANHATTAN = Location(40.7580, -73.9855)  # Times Square
BROOKLYN = Location(40.6782, -73.9442)
NEWARK = Location(40.7357, -74.1724)


def test_haversine_distance_matches_known_figures():
    assert distance_km(MANHATTAN, BROOKLYN) == pytest.approx(9.6, abs=0.3)
    assert distance_km(Location(51.5074, -0.1278), Location(48.8566, 2.3522)) == pytest.approx(343.5, abs=1.5)
    assert distance_km(MANHATTAN, MANHATTAN) == 0


def test_drive_is_distance_over_speed_plus_overhead():
    model = TravelModel(speed_kmh=30, overhead_minutes=10, detour_factor=1.0, p90_factor=1.5)
    estimate = model.estimate(MANHATTAN, BROOKLYN)
    km = distance_km(MANHATTAN, BROOKLYN)
    assert estimate.median_minutes == pytest.approx(10 + km / 30 * 60)
    assert estimate.p90_minutes == pytest.approx(estimate.median_minutes * 1.5)


def test_further_sites_take_longer():
    model = TravelModel()
    assert model.estimate(MANHATTAN, NEWARK).median_minutes > model.estimate(MANHATTAN, BROOKLYN).median_minutes


def test_same_site_costs_no_travel_and_unknown_ends_use_the_fallback():
    model = TravelModel(unknown_minutes=45)
    assert model.estimate(BROOKLYN, BROOKLYN).median_minutes == 0
    assert model.estimate(None, BROOKLYN).median_minutes == 45
    assert model.estimate(BROOKLYN, None).p90_minutes == 45 * model.p90_factor


@pytest.mark.parametrize("field, value", [("speed_kmh", 0), ("overhead_minutes", -1), ("p90_factor", 0.5),
                                          ("detour_factor", 0.9), ("unknown_minutes", float("nan"))])
def test_impossible_settings_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TravelModel(**{field: value})


def test_location_rejects_out_of_range_coordinates():
    with pytest.raises(ValueError, match="latitude"):
        Location(91, 0)
    with pytest.raises(ValueError, match="longitude"):
        Location(0, 181)


coords = st.builds(Location, st.floats(-89, 89), st.floats(-179, 179))


@given(coords, coords)
def test_distance_is_symmetric_and_estimates_ordered(a, b):
    assert distance_km(a, b) == pytest.approx(distance_km(b, a), abs=1e-6)
    estimate = TravelModel().estimate(a, b)
    assert 0 <= estimate.median_minutes <= estimate.p90_minutes
