"""The bench's view of the machine around its costs window (bench/costs.py)."""

from __future__ import annotations

from bench.costs import TICK, machine_ticks, others_on_the_machine


def test_what_else_ran_is_the_machine_busy_time_less_the_benchs_own():
    before = {"busy": 1_000, "steal": 10, "all": 5_000}
    after = {"busy": 1_000 + 30 * TICK, "steal": 10 + 2 * TICK, "all": 5_000 + 40 * TICK}
    # 30 s busy over a 20 s window on 2 cores; the stack, harness and load used 24 s
    assert others_on_the_machine(before, after, ours_s=24.0, wall_s=20.0, cores=2) == {
        "others_cpu_s": 6.0, "others_share_pct": 15.0, "steal_pct": 5.0}
    # the bench's processes counted more than the machine saw busy (ticks round): none
    assert others_on_the_machine(before, after, ours_s=31.0, wall_s=20.0,
                                 cores=2)["others_cpu_s"] == 0.0


def test_without_the_machines_counters_there_is_no_answer():
    assert others_on_the_machine({}, {"busy": 1, "steal": 0, "all": 1}, 1.0, 1.0, 2) is None
    assert others_on_the_machine({"busy": 1, "steal": 0, "all": 1},
                                 {"busy": 1, "steal": 0, "all": 1}, 1.0, 0.0, 2) is None


def test_this_machine_reports_its_ticks():
    ticks = machine_ticks()
    assert ticks["all"] >= ticks["busy"] + ticks["steal"] > 0
