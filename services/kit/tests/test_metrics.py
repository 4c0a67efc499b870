"""The bench's per-process counters: off by default, counting and written when asked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pika.channel import Channel as PikaChannel

from services.kit import metrics


def test_message_kind_folds_replies_and_keeps_names() -> None:
    assert metrics.message_kind("nameko-rpc", "booking.claim") == "nameko-rpc:booking.claim"
    assert metrics.message_kind("nameko-rpc", "rpc.reply-gateway-1f2e") == "nameko-rpc:reply"
    assert metrics.message_kind("", "amq.gen-Xy") == "(default):reply"
    assert metrics.message_kind("nameko-rpc", "0" * 32) == "nameko-rpc:reply"
    assert metrics.message_kind("booking.events", "claim_confirmed") == \
        "booking.events:claim_confirmed"


def test_command_counter_counts_each_command_by_database_and_name() -> None:
    counts = metrics.Counts()
    listener = metrics.CommandCounter(counts)
    for db, name in [("kepu_booking", "insert"), ("kepu_booking", "insert"),
                     ("kepu_venues", "findAndModify")]:
        listener.started(SimpleNamespace(database_name=db, command_name=name))
    assert counts.snapshot()["db"] == {"kepu_booking.insert": 2,
                                       "kepu_venues.findAndModify": 1}


def test_install_is_a_no_op_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.ENABLED_ENV, raising=False)
    monkeypatch.setattr(metrics, "_state", {})
    options: dict[str, Any] = {}
    metrics.install("booking", options)
    assert options == {}
    assert metrics.counts() is None


def test_install_adds_the_listener_and_writes_the_totals(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv(metrics.ENABLED_ENV, "1")
    monkeypatch.setenv("KEPU_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(metrics, "_state", {})
    monkeypatch.setattr(metrics, "_count_amqp", lambda counts: None)
    options: dict[str, Any] = {}
    metrics.install("booking", options)
    [listener] = options["event_listeners"]
    listener.started(SimpleNamespace(database_name="kepu_booking", command_name="find"))
    metrics.write_now()
    [record] = metrics.read_all(tmp_path).values()
    assert record["app"] == "booking"
    assert record["db"] == {"kepu_booking.find": 1}


def test_pika_publishes_and_deliveries_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(PikaChannel, "basic_publish",
                        lambda self, exchange, routing_key, body=b"", **kw:
                        sent.append((exchange, routing_key)))
    monkeypatch.setattr(PikaChannel, "_on_deliver", lambda self, m, h, b: None)
    monkeypatch.setattr(PikaChannel, "_kepu_counted", False, raising=False)
    counts = metrics.Counts()
    metrics._wrap_pika(counts)
    channel = object.__new__(PikaChannel)
    channel.basic_publish(exchange="nameko-rpc", routing_key="venues.hold", body=b"{}")
    method = SimpleNamespace(method=SimpleNamespace(exchange="booking.events",
                                                    routing_key="claim_confirmed"))
    channel._on_deliver(method, None, b"{}")
    assert sent == [("nameko-rpc", "venues.hold")]
    assert counts.snapshot()["published"] == {"nameko-rpc:venues.hold": 1}
    assert counts.snapshot()["delivered"] == {"booking.events:claim_confirmed": 1}



def test_totals_are_written_only_when_the_bench_asks(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv(metrics.ENABLED_ENV, "1")
    monkeypatch.setenv("KEPU_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(metrics, "_state", {})
    monkeypatch.setattr(metrics, "_count_amqp", lambda counts: None)
    monkeypatch.setattr(metrics, "_write_forever", lambda: None)  # the test is the loop
    metrics.install("venues", {})
    assert metrics.answer(tmp_path, None) is None  # unasked: no file write at all
    assert metrics.read_all(tmp_path) == {}
    asked = metrics.request_totals(tmp_path)
    answered = metrics.answer(tmp_path, None)
    assert answered is not None
    [record] = metrics.read_all(tmp_path).values()
    assert record["app"] == "venues" and record["at"] >= asked
    (tmp_path / "metrics" / "venues-{}.json".format(record["pid"])).unlink()
    assert metrics.answer(tmp_path, answered) == answered  # the same request: answered once
    assert metrics.read_all(tmp_path) == {}
