"""The bench's view of the machine around its costs window (bench/costs.py, yardstick.py)."""

from __future__ import annotations

import time

from bench import yardstick
from bench.costs import TICK, machine_ticks, others_on_the_machine, table


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


def test_the_yardstick_times_its_own_threads_cpu_while_it_runs():
    sampler = yardstick.Sampler(interval_s=0.01).start()
    deadline = time.monotonic() + 10
    while len(sampler.samples) < 3 and time.monotonic() < deadline:
        yardstick.once(rounds=1)  # this thread's work is not the sampler's
    samples = sampler.stop()
    assert len(samples) >= 3 and all(ms > 0 for ms in samples)
    assert not sampler.running()  # stopped means its thread has ended: it takes no more
    assert yardstick.median_of([3.0, 9.0, 4.0]) == 4.0
    assert yardstick.median_of([]) is None


def test_the_table_shows_the_yardstick_beside_the_costs():
    report = {"db_commands_per_claim": {"total": 7.0, "by_service": {}, "by_kind": {}},
              "cpu_ms_per_claim": {"total": 23.0, "kepu_processes": 11.0, "by_process": {}},
              "amqp_messages_per_claim": {"published": 5.0, "delivered": 5.5,
                                          "published_by_kind": {}},
              "yardstick_ms": {"idle": 5.0, "window": 6.0, "window_samples": 25}}
    rows = dict(table(report))
    assert rows["yardstick: fixed work, CPU ms at idle / in the window (bench/yardstick.py)"] \
        == "5.0 / 6.0 (× 1.20)"
    report["yardstick_ms"]["idle"] = None  # no idle sample: no row rather than a bad ratio
    assert not any(k.startswith("yardstick") for k in dict(table(report)))
