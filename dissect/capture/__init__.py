"""Bytes in, packets out: capture files (pcap, pcapng, gzip), link layers, IP and tunnels.

:mod:`.reader` yields each packet as an offset into a large read chunk; :mod:`.link` finds the
network layer behind Ethernet, VLAN tags, Linux cooked headers, BSD loopback or raw IP;
:mod:`.ip` decodes IPv4 and IPv6 (fragments reassembled); :mod:`.tunnels` hands the inner packets
of VXLAN, Geneve and GRE back to the pipeline.
"""
