"""Flows and TCP: the flow table (:mod:`.flows`), TCP reassembly and handshake timing
(:mod:`.tcp`), the resource limits a user can set (:mod:`.limits`), for ``--jobs``, which
worker owns which flow (:mod:`.ownership`), and for ``--dask`` the flow tables of a run split by
flows (:mod:`.flowsplit`: a file's log, the replay numbering flows as one process, a task's table;
:mod:`.flowlog`: a file's log packed).

A :class:`~dissect.transport.tcp.TcpConnection` alone decides where its next in-order bytes go:
its ``app`` dissector, changed only through ``TcpConnection.switch``.
"""
