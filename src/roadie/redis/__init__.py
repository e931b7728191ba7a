"""Roadie's access to Redis: the only package that uses redis-py's internals or ctypes.

- ``connection``: clients from a ``Config`` (URLs, Sentinel, TLS, ACL, timeouts, the
  error classes roadie adds to redis-py's parser, the minimum Redis version).
- ``sentinel``: redis-py's Sentinel classes as roadie uses them.
- ``dedicated``: a processor's own connection, with the short command path and the
  write that keeps the GIL (``roadie.speedups``: ``short_command_path``, ``gil_send``).
- ``loop``: the event loop's own connection for its fetches (``loop_connection``).
"""
