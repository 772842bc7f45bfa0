"""Community ID v1 against the spec's reference values and the reference implementation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.transport.community_id import TCP, UDP, community_id


def packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def test_spec_example() -> None:
    # The spec's README example (and the contract's): 128.232.110.120:34855 -> 66.35.250.204:80/tcp
    assert community_id(packed("128.232.110.120"), 34855, packed("66.35.250.204"), 80, TCP) \
        == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    # the same flow seen from the other side has the same id
    assert community_id(packed("66.35.250.204"), 80, packed("128.232.110.120"), 34855, TCP) \
        == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


communityid = pytest.importorskip("communityid")

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)), st.integers(0, 65535), st.integers(0, 65535),
       st.sampled_from([TCP, UDP]), st.sampled_from([0, 1, 65535]))
def test_equals_the_reference_implementation(ips: tuple[str, str], sport: int, dport: int, proto: int,
                                            seed: int) -> None:
    src, dst = ips
    make = communityid.FlowTuple.make_tcp if proto == TCP else communityid.FlowTuple.make_udp
    expected = communityid.CommunityID(seed).calc(make(src, dst, sport, dport))
    assert community_id(packed(src), sport, packed(dst), dport, proto, seed) == expected
