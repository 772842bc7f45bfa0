"""Application protocols, one module (or package) each, chosen per connection by :mod:`.registry`.

Every dissector is sans-IO: fed the in-order bytes of one direction with a timestamp
(``feed``), told of lost bytes (``gap``) and of the end (``finish``), it appends rows to an
:class:`~dissect.records.Outbox`. A protocol that ends in a switch (HTTP's 101) stops and hands
back what follows; :mod:`.registry` decides, from its tables, which dissector gets those bytes.
"""
