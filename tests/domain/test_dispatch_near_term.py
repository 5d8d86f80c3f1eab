"""Near-term improvement: moves that lower the expected lateness, within the firm's rules."""
from dataclasses import replace
from datetime import timedelta
from statistics import NormalDist

from hypothesis import example, given, settings, strategies as st

from portal.domain.calendar import CoverageCalendar
from portal.domain.dispatch import _NearTermSearch, improve_near_term, plan_dispatch
from portal.domain.effort import Z90, EffortEstimate
from tests.domain.test_dispatch import ALWAYS, TRAVEL, WEDNESDAY_10_NY, tech, ticket

NOW = WEDNESDAY_10_NY
LONG = EffortEstimate(180, 180)
HOUR_EXACT = EffortEstimate(60, 60)
SHORT = EffortEstimate(20, 20)
RUNS_LONG_AT_TIMES = EffortEstimate(60, 150)


def late_cost(order, costs, techs, share=0.0):
    """Cost of delay of the plan: every hour past the due, and `share` of every hour waited."""
    total = 0.0
    for t, e in zip(order, plan_dispatch(order, techs, NOW, TRAVEL)):
        if e.median is None:  # nobody on the roster has its skill: not in the plan
            continue
        total += costs[t.id] * share * max(0.0, (e.median - NOW) / timedelta(hours=1))
        if t.sla_due is not None and e.median > t.sla_due:
            total += costs[t.id] * (e.median - t.sla_due) / timedelta(hours=1)
    return total


def broken_promises(order, promise, techs):
    """Promise points x the chance each start misses its due, from the plan's median and 90% bound."""
    total = 0.0
    for t, e in zip(order, plan_dispatch(order, techs, NOW, TRAVEL)):
        if e.median is None or t.sla_due is None or not promise.get(t.id):
            continue
        minutes = lambda at: (at - NOW) / timedelta(minutes=1)  # noqa: E731
        spread = (minutes(e.p90) - minutes(e.median)) / Z90
        if spread > 0:
            chance = 1 - NormalDist().cdf((minutes(t.sla_due) - minutes(e.median)) / spread)
        else:
            chance = 1.0 if e.median > t.sla_due else 0.0
        total += promise[t.id] * chance
    return total


def test_short_urgent_job_goes_before_a_long_one_when_that_keeps_both_promises():
    long_job = ticket(1, effort=LONG, sla_due=NOW + timedelta(hours=4))
    short_job = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    costs = {1: 100.0, 2: 100.0}
    better = improve_near_term([long_job, short_job], [tech(1)], NOW, TRAVEL, costs, {1: "contract", 2: "contract"})
    assert [t.id for t in better] == [2, 1]
    assert late_cost(better, costs, [tech(1)]) == 0 < late_cost([long_job, short_job], costs, [tech(1)])


def test_never_swaps_break_fix_ahead_of_a_contract():
    contract = ticket(1, effort=LONG, sla_due=NOW + timedelta(hours=4))
    break_fix = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    order = improve_near_term([contract, break_fix], [tech(1)], NOW, TRAVEL, {1: 5.0, 2: 1000.0},
                              {1: "contract", 2: "break/fix"})
    assert [t.id for t in order] == [1, 2]


def test_a_pinned_ticket_keeps_its_place_and_nothing_jumps_it():
    tickets = [ticket(1, effort=LONG, sla_due=NOW + timedelta(hours=5)), ticket(2, effort=LONG),
               ticket(3, effort=SHORT, sla_due=NOW + timedelta(minutes=30))]
    order = improve_near_term(tickets, [tech(1)], NOW, TRAVEL, {1: 10.0, 2: 10.0, 3: 500.0}, {}, fixed={2})
    assert [t.id for t in order] == [1, 2, 3]


def test_no_expected_lateness_keeps_the_triage_order():
    tickets = [ticket(i, effort=SHORT, sla_due=NOW + timedelta(hours=8)) for i in range(1, 5)]
    assert improve_near_term(tickets, [tech(1), tech(2)], NOW, TRAVEL, {i: 1.0 for i in range(1, 5)}, {}) == tickets


def test_looks_past_the_first_two_jobs_per_technician_on_a_small_queue():
    """Two technicians: the step used to look at 4 jobs; a small queue is now looked at whole (up to 12)."""
    tickets = [ticket(i, effort=EffortEstimate(60, 60), sla_due=NOW + timedelta(hours=8)) for i in range(1, 9)]
    urgent = ticket(9, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    costs = {i: 5.0 for i in range(1, 9)} | {9: 100.0}
    techs = [tech(1), tech(2)]
    order = improve_near_term(tickets + [urgent], techs, NOW, TRAVEL, costs, {})
    assert [t.id for t in order].index(9) <= 1
    assert late_cost(order, costs, techs) == 0 < late_cost(tickets + [urgent], costs, techs)


def test_nothing_moves_when_every_promise_is_kept():
    """The outage stays before the mouse when both are on time: waiting alone is triage's business."""
    outage = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=4))
    mouse = ticket(2, effort=SHORT, sla_due=NOW + timedelta(hours=2))
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, {1: 100.0, 2: 5.0}, {},
                              share_before_due=0.25)
    assert [t.id for t in order] == [1, 2]


def test_an_outage_is_not_parked_behind_a_mouse_to_keep_the_mouse_on_time():
    """Half an hour of an office outage (a quarter of 100 points an hour counts while it waits)
    costs more than half an hour of one mouse past its due (5 points an hour), when no promise
    is at stake (see the next test for one that is)."""
    outage = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=4))
    mouse = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, {1: 100.0, 2: 5.0}, {},
                              share_before_due=0.25)
    assert [t.id for t in order] == [1, 2]


def test_a_revenue_losing_outage_outweighs_a_mouse_promise_but_a_plain_one_does_not():
    """With the mouse's contract promise at stake (100 points), a $50,000-an-hour outage (1,100
    points an hour, a quarter of it counting while it waits: 137.5 for the half hour) still goes
    first; an office outage without revenue at risk (12.5) waits the mouse's half hour."""
    outage = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=4))
    mouse = ticket(2, effort=EffortEstimate(30, 30), sla_due=NOW + timedelta(minutes=40))
    groups, promise = {1: "contract", 2: "contract"}, {1: 100.0, 2: 100.0}
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, {1: 1100.0, 2: 5.0}, groups,
                              share_before_due=0.25, promise=promise)
    assert [t.id for t in order] == [1, 2]
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, {1: 100.0, 2: 5.0}, groups,
                              share_before_due=0.25, promise=promise)
    assert [t.id for t in order] == [2, 1]


def test_a_short_job_goes_first_when_that_keeps_its_promise_at_a_lower_cost_of_delay():
    long_job = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=4))
    short_job = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    order = improve_near_term([long_job, short_job], [tech(1)], NOW, TRAVEL, {1: 25.0, 2: 25.0}, {},
                              share_before_due=0.25)
    assert [t.id for t in order] == [2, 1]


def test_equal_lateness_keeps_the_order_with_less_waiting_cost():
    """Both orders leave the same lateness: the one where the costlier job waits less wins."""
    late_anyway = ticket(1, effort=HOUR_EXACT, sla_due=NOW - timedelta(hours=1))
    costly = ticket(2, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=5))
    cheap = ticket(3, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=5))
    costs = {1: 100.0, 2: 100.0, 3: 1.0}
    order = improve_near_term([late_anyway, cheap, costly], [tech(1)], NOW, TRAVEL, costs, {}, share_before_due=0.25)
    assert [t.id for t in order] == [1, 2, 3]
    order = improve_near_term([late_anyway, costly, cheap], [tech(1)], NOW, TRAVEL, costs, {}, share_before_due=0.25)
    assert [t.id for t in order] == [1, 2, 3]


def test_the_work_is_bounded_by_the_plans_it_may_try():
    long_job = ticket(1, effort=LONG, sla_due=NOW + timedelta(hours=4))
    short_job = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    costs = {1: 100.0, 2: 100.0}
    assert improve_near_term([long_job, short_job], [tech(1)], NOW, TRAVEL, costs, {}, max_plans=1) == [long_job, short_job]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 240), st.integers(-30, 480), st.integers(0, 2000), st.booleans()),
                min_size=1, max_size=12))
def test_result_is_a_permutation_never_worse_and_inputs_untouched(specs):
    """Never worse on what it looks at (here the whole list: the window covers every ticket)."""
    tickets = [ticket(i, effort=EffortEstimate(e, e), sla_due=NOW + timedelta(minutes=d))
               for i, (e, d, _c, _g) in enumerate(specs, start=1)]
    costs = {i: float(c) for i, (_e, _d, c, _g) in enumerate(specs, start=1)}
    groups = {i: g for i, (_e, _d, _c, g) in enumerate(specs, start=1)}
    techs = [tech(1), tech(2, skills=("software",))]
    before = list(tickets)
    order = improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, window=len(tickets))
    assert tickets == before and all(a is b for a, b in zip(tickets, before))
    assert sorted(t.id for t in order) == [t.id for t in tickets]
    assert late_cost(order, costs, techs) <= late_cost(tickets, costs, techs) + 1e-6
    # Only neighbours of the same group swap: tickets of different groups keep their order.
    place = {t.id: k for k, t in enumerate(order)}
    for x in tickets:
        for y in tickets:
            if x.id < y.id and groups[x.id] != groups[y.id]:
                assert place[x.id] < place[y.id]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 240), st.integers(-30, 480), st.integers(0, 2000), st.booleans(),
                          st.booleans()), min_size=1, max_size=14),
       st.integers(1, 3))
def test_pins_stay_and_the_cost_of_delay_never_grows_with_the_default_window(specs, technicians):
    """Local search from the triage order: a move is kept only when it lowers the planned cost of delay."""
    tickets = [ticket(i, effort=EffortEstimate(e, e), sla_due=NOW + timedelta(minutes=d))
               for i, (e, d, _c, _g, _p) in enumerate(specs, start=1)]
    costs = {i: float(c) for i, (_e, _d, c, _g, _p) in enumerate(specs, start=1)}
    groups = {i: g for i, (_e, _d, _c, g, _p) in enumerate(specs, start=1)}
    fixed = {i for i, (_e, _d, _c, _g, p) in enumerate(specs, start=1) if p}
    techs = [tech(k) for k in range(1, technicians + 1)]
    order = improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, fixed=fixed, share_before_due=0.25)
    assert sorted(t.id for t in order) == [t.id for t in tickets]
    for k, t in enumerate(tickets):
        if t.id in fixed:
            assert order[k].id == t.id
    # With at most 12 tickets the default window covers them all (at least 12 places).
    if len(tickets) <= 12:
        assert late_cost(order, costs, techs, 0.25) <= late_cost(tickets, costs, techs, 0.25) + 1e-6


def test_the_all_rounder_is_kept_for_the_job_only_they_can_do():
    """The greedy plan gives the contract job to the all-rounder free first, so the network job
    waits an hour; giving the contract job to the software specialist free ten minutes later keeps
    both on time. Allowed between two tickets of one class (here without a FastPass)."""
    all_rounder, specialist = tech(1, skills=("network", "software")), tech(2, skills=("software",), busy=10)
    contract = ticket(1, skill="software", effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=2))
    network = ticket(2, skill="network", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=20))
    costs, groups, techs = {1: 100.0, 2: 100.0}, {1: "contract", 2: "break/fix"}, [all_rounder, specialist]
    assert late_cost([contract, network], costs, techs) > 0
    order = improve_near_term([contract, network], techs, NOW, TRAVEL, costs, groups)
    assert [t.id for t in order] == [1, 2] and order[0].pinned_technician_id == 2
    assert late_cost(order, costs, techs) == 0
    plan = plan_dispatch(order, techs, NOW, TRAVEL)
    assert [e.technician_id for e in plan] == [2, 1]


def test_a_contract_ticket_never_waits_so_that_a_break_fix_one_starts_first():
    """The FastPass: the same two jobs, the first a contract client's. Handing it to the specialist
    free in ten minutes would let the all-rounder start the break/fix job now, ahead of it, which
    the contract client was promised never happens; the contract job keeps the all-rounder and the
    break/fix job waits (late). Tickets that jump nobody may still be handed on."""
    all_rounder, specialist = tech(1, skills=("network", "software")), tech(2, skills=("software",), busy=10)
    contract = ticket(1, skill="software", effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=2))
    network = ticket(2, skill="network", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=20))
    costs, groups, techs = {1: 100.0, 2: 100.0}, {1: "contract", 2: "break/fix"}, [all_rounder, specialist]
    order = improve_near_term([contract, network], techs, NOW, TRAVEL, costs, groups, fastpass={1})
    assert order == [contract, network]
    plan = plan_dispatch(order, techs, NOW, TRAVEL)
    assert [e.technician_id for e in plan] == [1, 1] and plan[0].median < plan[1].median

    second_contract = ticket(2, skill="network", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=20))
    order = improve_near_term([contract, second_contract], techs, NOW, TRAVEL, costs,
                              {1: "contract", 2: "contract"}, fastpass={1, 2})
    given = {e.ticket_id: e.technician_id for e in plan_dispatch(order, techs, NOW, TRAVEL)}
    assert given == {1: 2, 2: 1}


def test_a_ticket_given_to_a_technician_or_pinned_by_a_dispatcher_keeps_them():
    all_rounder, specialist = tech(1, skills=("network", "software")), tech(2, skills=("software",), busy=10)
    given = ticket(1, skill="software", effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=2), pinned=1)
    network = ticket(2, skill="network", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=20))
    costs, groups = {1: 100.0, 2: 100.0}, {1: "contract", 2: "break/fix"}
    assert improve_near_term([given, network], [all_rounder, specialist], NOW, TRAVEL, costs, groups) == [given, network]
    unpinned = ticket(1, skill="software", effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=2))
    order = improve_near_term([unpinned, network], [all_rounder, specialist], NOW, TRAVEL, costs, groups, fixed={1})
    assert order == [unpinned, network]


def test_a_ticket_is_never_given_to_a_technician_who_never_comes_on_duty():
    """A technician just created, before their shifts are entered, has no hours at all. Given to
    them, a job drops out of the plan and costs nothing, which made every such plan look cheaper:
    break/fix tickets lost their technician and their estimate on the board and the client page."""
    no_shifts_yet = tech(2, calendar=CoverageCalendar("UTC", {}))
    long_job = ticket(1, effort=LONG)
    urgent = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=30))
    techs = [tech(1), no_shifts_yet]
    order = improve_near_term([long_job, urgent], techs, NOW, TRAVEL, {1: 5.0, 2: 100.0},
                              {1: "break/fix", 2: "other"}, share_before_due=0.25)
    plan = plan_dispatch(order, techs, NOW, TRAVEL)
    assert [e.technician_id for e in plan] == [1, 1]
    assert all(e.median is not None for e in plan)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(5, 240), st.none() | st.integers(-30, 480), st.integers(0, 2000), st.booleans(),
                          st.sampled_from([None, "network", "software", "security"])), min_size=1, max_size=12),
       st.lists(st.integers(0, 120), min_size=1, max_size=4), st.booleans())
def test_a_ticket_is_only_given_to_a_technician_with_its_skill_and_never_costs_more(specs, busy, one_without_hours):
    skill_sets = [("network", "software"), ("software",), ("network", "security"), ("security", "software")]
    techs = [tech(k + 1, skills=skill_sets[k], busy=b) for k, b in enumerate(busy)]
    if one_without_hours:
        techs.append(tech(9, skills=("network", "software", "security"), calendar=CoverageCalendar("UTC", {})))
    skills_of = {t.id: t.skills for t in techs}
    tickets = [ticket(i, skill=s, effort=EffortEstimate(e, e), sla_due=None if d is None else NOW + timedelta(minutes=d))
               for i, (e, d, _c, _g, s) in enumerate(specs, start=1)]
    costs = {i: float(c) for i, (_e, _d, c, _g, _s) in enumerate(specs, start=1)}
    groups = {i: g for i, (_e, _d, _c, g, _s) in enumerate(specs, start=1)}
    order = improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, share_before_due=0.25)
    assert sorted(t.id for t in order) == [t.id for t in tickets]
    for t in order:
        if t.pinned_technician_id is not None:
            assert t.required_skill is None or t.required_skill in skills_of[t.pinned_technician_id]
    planned = lambda plan: sum(e.median is not None for e in plan_dispatch(plan, techs, NOW, TRAVEL))  # noqa: E731
    assert planned(order) == planned(tickets)
    assert late_cost(order, costs, techs, 0.25) <= late_cost(tickets, costs, techs, 0.25) + 1e-6


def test_a_promise_at_risk_goes_first_though_its_median_start_keeps_it():
    """After the outage job the mouse starts ten minutes before its due at the median, but that job
    runs long often enough to make the promise a coin toss; the outage's own due is hours away."""
    outage = ticket(1, effort=RUNS_LONG_AT_TIMES, sla_due=NOW + timedelta(hours=8))
    mouse = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=70))
    costs, groups = {1: 100.0, 2: 5.0}, {1: "contract", 2: "contract"}
    assert late_cost([outage, mouse], costs, [tech(1)]) == 0
    assert improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, costs, groups) == [outage, mouse]
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, costs, groups, promise={2: 100.0})
    assert [t.id for t in order] == [2, 1]
    assert broken_promises(order, {2: 100.0}, [tech(1)]) < 1 < broken_promises([outage, mouse], {2: 100.0}, [tech(1)])


def test_a_promise_kept_for_certain_moves_nothing():
    outage = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(hours=8))
    mouse = ticket(2, effort=SHORT, sla_due=NOW + timedelta(minutes=70))
    order = improve_near_term([outage, mouse], [tech(1)], NOW, TRAVEL, {1: 100.0, 2: 5.0}, {}, promise={2: 100.0})
    assert order == [outage, mouse]


# Queues with promises: (effort, extra minutes at the 90% bound, due in, cost, promise, group) each.
PROMISE_QUEUES = st.lists(st.tuples(st.integers(5, 240), st.integers(0, 200), st.integers(-30, 480),
                                    st.integers(0, 2000), st.sampled_from([0.0, 100.0]), st.booleans()),
                          min_size=1, max_size=12)


def promise_queue(specs, technicians):
    """(tickets, costs, promise, groups, technicians) of a PROMISE_QUEUES example."""
    tickets = [ticket(i, effort=EffortEstimate(e, e + extra), sla_due=NOW + timedelta(minutes=d))
               for i, (e, extra, d, _c, _p, _g) in enumerate(specs, start=1)]
    costs = {i: float(c) for i, (_e, _x, _d, c, _p, _g) in enumerate(specs, start=1)}
    promise = {i: p for i, (_e, _x, _d, _c, p, _g) in enumerate(specs, start=1)}
    groups = {i: g for i, (_e, _x, _d, _c, _p, g) in enumerate(specs, start=1)}
    return tickets, costs, promise, groups, [tech(k) for k in range(1, technicians + 1)]


@settings(max_examples=40, deadline=None)
@given(PROMISE_QUEUES, st.integers(1, 3))
def test_lateness_plus_promises_at_risk_never_grows(specs, technicians):
    """The search keeps a move only when planned lateness plus promises expected broken goes down."""
    tickets, costs, promise, groups, techs = promise_queue(specs, technicians)
    order = improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, promise=promise)
    assert sorted(t.id for t in order) == [t.id for t in tickets]
    before = late_cost(tickets, costs, techs) + broken_promises(tickets, promise, techs)
    assert late_cost(order, costs, techs) + broken_promises(order, promise, techs) <= before + 1e-6


def test_a_contract_ticket_is_not_handed_to_a_busy_technician_so_that_break_fix_takes_the_free_one():
    """Giving the contract job to the technician busy for two hours would free the other for a
    costlier break/fix job, but it would make the contract job late: a ticket given to another
    technician may wait for them only while it still starts by its due."""
    free_now, busy = tech(1), tech(2, busy=120)
    contract = ticket(1, effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=30))
    break_fix = ticket(2, effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=30))
    costs, groups = {1: 5.0, 2: 500.0}, {1: "contract", 2: "break/fix"}
    order = improve_near_term([contract, break_fix], [free_now, busy], NOW, TRAVEL, costs, groups)
    assert order == [contract, break_fix]
    plan = plan_dispatch(order, [free_now, busy], NOW, TRAVEL)
    assert plan[0].technician_id == 1 and plan[0].median == NOW


def test_a_plan_met_again_in_one_search_is_not_planned_again_but_still_counts_against_the_budget():
    """Moving ticket 1 behind ticket 2 and ticket 2 ahead of ticket 1 give the same plan."""
    planned = []

    def cost(plan):
        planned.append([t.id for t in plan])
        return float(plan[0].id), {t.id: 0.0 for t in plan}

    first, second = ticket(1), ticket(2)
    search = _NearTermSearch(cost, best=5.0, starts={}, dues={1: 60.0, 2: 60.0}, budget=10)
    assert search._better([second, first])
    assert not search._better([second, first])
    assert planned == [[2, 1]]
    assert not search._better([replace(second, pinned_technician_id=7), first])  # another plan: given to tech 7
    assert planned == [[2, 1], [2, 1]]
    assert search.budget == 7


def test_a_contract_ticket_waits_for_another_technician_only_if_its_promise_stays_safe():
    """The software specialist should be free in 20 minutes, but their job may run on to 90 (its
    90% bound). Handing them the contract job (due in 40) would let the all-rounder take the
    break/fix network job on time, yet it would leave the contract promise a gamble: a ticket
    given to another technician may wait for them only while its 90% bound stays by its due."""
    all_rounder = tech(1, skills=("network", "software"))
    specialist = replace(tech(2, skills=("software",), busy=20), free_at_p90=NOW + timedelta(minutes=90))
    contract = ticket(1, skill="software", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=40))
    network = ticket(2, skill="network", effort=HOUR_EXACT, sla_due=NOW + timedelta(minutes=20))
    costs, groups, promise = {1: 5.0, 2: 100.0}, {1: "contract", 2: "break/fix"}, {1: 100.0}
    techs = [all_rounder, specialist]
    handed = [replace(contract, pinned_technician_id=2), network]
    plan = plan_dispatch(handed, techs, NOW, TRAVEL)
    assert plan[0].median < contract.sla_due < plan[0].p90  # on time at the median, not at the 90% bound
    assert (late_cost(handed, costs, techs) + broken_promises(handed, promise, techs)
            < late_cost([contract, network], costs, techs) + broken_promises([contract, network], promise, techs))
    order = improve_near_term([contract, network], techs, NOW, TRAVEL, costs, groups, promise=promise)
    assert order == [contract, network]
    assert plan_dispatch(order, techs, NOW, TRAVEL)[0].technician_id == 1


def test_the_search_also_starts_from_the_earliest_due_order_when_that_costs_less():
    """One technician, three contract jobs. From the triage order, moving one job at a time stops
    at a plan that breaks the promise of the two-hour job due in 20 minutes (every single move
    from there breaks another); in order of due, all three are kept."""
    hour, hour_and_half, two_hours = EffortEstimate(60, 60), EffortEstimate(90, 90), EffortEstimate(120, 120)
    tickets = [ticket(1, effort=hour, sla_due=NOW + timedelta(minutes=130)),
               ticket(2, effort=hour_and_half, sla_due=NOW + timedelta(minutes=180)),
               ticket(3, effort=two_hours, sla_due=NOW + timedelta(minutes=20))]
    costs, promise = {1: 25.0, 2: 100.0, 3: 25.0}, {1: 100.0, 2: 100.0, 3: 100.0}
    groups = dict.fromkeys((1, 2, 3), "contract")
    order = improve_near_term(tickets, [tech(1)], NOW, TRAVEL, costs, groups, share_before_due=0.25, promise=promise)
    assert [t.id for t in order] == [3, 1, 2]
    assert broken_promises(order, promise, [tech(1)]) == 0 == late_cost(order, costs, [tech(1)])


@settings(max_examples=40, deadline=None)
@given(PROMISE_QUEUES, st.integers(1, 3))
@example([(5, 0, 6, 0, 0.0, True), (5, 0, 5, 1, 0.0, True)], 1)  # only waiting differs: the search does not run
def test_never_costlier_than_serving_each_class_in_order_of_due(specs, technicians):
    """Both starts are searched and the cheaper result kept: it never costs more than either.
    With nothing late and no promise at risk, nothing is searched and triage's order stands
    (waiting alone never reorders the queue: test_nothing_moves_when_every_promise_is_kept)."""
    tickets, costs, promise, groups, techs = promise_queue(specs, technicians)
    if late_cost(tickets, costs, techs) + broken_promises(tickets, promise, techs) <= 1e-9:
        assert improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, share_before_due=0.25,
                                 promise=promise) == tickets
        return
    by_due, run = [], []
    for t in tickets + [None]:
        if run and (t is None or groups[t.id] != groups[run[0].id]):
            by_due += sorted(run, key=lambda r: r.sla_due)
            run = []
        if t is not None:
            run.append(t)
    order = improve_near_term(tickets, techs, NOW, TRAVEL, costs, groups, share_before_due=0.25, promise=promise)
    cost = lambda o: late_cost(o, costs, techs, 0.25) + broken_promises(o, promise, techs)  # noqa: E731
    assert cost(order) <= min(cost(tickets), cost(by_due)) + 1e-6
