"""The client's address behind trusted proxies (KEPU_TRUSTED_PROXIES), as the throttle,
sign-in and the audit trail see it."""

from __future__ import annotations

import pytest

from services.gateway.throttle import LOOPBACK, client_address, trusted_networks
from services.kit.config import Settings

CLUSTER = trusted_networks("10.0.0.0/8, fd00::/8")  # the pod network: ingress and console
LOCAL = trusted_networks(LOOPBACK)


def test_a_peer_outside_the_trusted_networks_is_the_client_whatever_it_forwards():
    assert client_address("203.0.113.9", "1.2.3.4", CLUSTER) == "203.0.113.9"
    assert client_address("203.0.113.9", "10.1.1.1", CLUSTER) == "203.0.113.9"
    assert client_address("203.0.113.9", None, CLUSTER) == "203.0.113.9"
    assert client_address(None, None, CLUSTER) == "unknown"


def test_api_traffic_through_the_ingress_is_its_client():
    # browser -> ingress (10.0.3.3, appends the browser) -> gateway
    assert client_address("10.0.3.3", "198.51.100.7", CLUSTER) == "198.51.100.7"


def test_console_traffic_through_the_ingress_and_the_console_is_the_parent():
    # browser -> ingress (10.0.3.3) -> console (10.0.9.9, appends the ingress) -> gateway:
    # one more hop than direct API traffic, the same client
    assert client_address("10.0.9.9", "198.51.100.7, 10.0.3.3", CLUSTER) == "198.51.100.7"


def test_what_the_client_wrote_left_of_the_first_untrusted_address_is_ignored():
    spoofed = "6.6.6.6, 10.0.0.1, 198.51.100.7, 10.0.3.3"
    assert client_address("10.0.9.9", spoofed, CLUSTER) == "198.51.100.7"


def test_only_trusted_proxies_on_the_way_means_the_left_most():
    assert client_address("10.0.9.9", "10.0.4.4, 10.0.3.3", CLUSTER) == "10.0.4.4"
    assert client_address("127.0.0.1", "127.0.0.1", LOCAL) == "127.0.0.1"


def test_ipv6_clients_and_proxies():
    assert client_address("fd00::9", "2001:db8::7, fd00::3", CLUSTER) == "2001:db8::7"
    assert client_address("::1", "[2001:DB8:0::7]:51000", LOCAL) == "2001:db8::7"
    assert client_address("2001:db8::66", "198.51.100.7", LOCAL) == "2001:db8::66"
    # a dual-stack socket reports an IPv4 peer as IPv4-mapped IPv6: still loopback
    assert client_address("::ffff:127.0.0.1", "198.51.100.7", LOCAL) == "198.51.100.7"


def test_a_peer_without_an_address_is_a_unix_socket_on_this_host():
    assert client_address(None, "198.51.100.7", LOCAL) == "198.51.100.7"
    assert client_address("", "198.51.100.7", CLUSTER) == "unknown"  # loopback untrusted there
    assert client_address("", "198.51.100.7", trusted_networks("")) == "unknown"
    assert client_address(None, " , ", LOCAL) == "unknown"  # an empty chain: the peer


def test_an_entry_with_a_port_and_an_entry_that_is_no_address():
    assert client_address("10.0.3.3", "198.51.100.7:4711", CLUSTER) == "198.51.100.7"
    assert client_address("10.0.3.3", "unknown", CLUSTER) == "unknown"


def test_the_default_trusts_loopback_only_and_a_bad_network_stops_the_start():
    assert Settings.from_env({}).trusted_proxies == LOOPBACK
    assert client_address("127.0.0.1", "198.51.100.7", LOCAL) == "198.51.100.7"
    assert client_address("10.0.3.3", "198.51.100.7", LOCAL) == "10.0.3.3"
    with pytest.raises(ValueError, match="KEPU_TRUSTED_PROXIES"):
        trusted_networks("10.0.0.0/8,ingress")


def test_the_retired_hop_count_is_refused_rather_than_ignored():
    with pytest.raises(ValueError, match="KEPU_TRUSTED_PROXIES"):
        Settings.from_env({"KEPU_PROXY_HOPS": "1"})
