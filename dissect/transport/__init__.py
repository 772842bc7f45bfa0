"""Flows and TCP: the flow table (:mod:`.flows`), TCP reassembly and handshake timing
(:mod:`.tcp`), the resource limits a user can set (:mod:`.limits`) and, for ``--jobs``, which
worker owns which flow (:mod:`.ownership`).

A :class:`~dissect.transport.tcp.TcpConnection` alone decides where its next in-order bytes go:
its ``app`` dissector, changed only through ``TcpConnection.switch``.
"""
