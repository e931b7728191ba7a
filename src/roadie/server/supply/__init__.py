"""Where a processor's jobs come from: the fetch policy, behind ``Supply.take``.

- ``supply.py``: ``Supply``, one per processor: its batch, steal, park, fetch and
  blocking fetch, in that order (its docstring lists them).
- ``acks.py``: ``PendingAcks``, successes whose acknowledgement rides on a fetch.
- ``deal.py``: one fetch's jobs dealt out to several processors.
- ``loopfetch.py``: ``LoopFetcher``, fetching on the event loop (refill).
- ``parking.py``: ``Parking``, where processors wait when the queues run dry.

``roadie.speedups`` lists each mechanism with its switch.
"""
