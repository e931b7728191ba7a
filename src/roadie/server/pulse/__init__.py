"""The liveness pulse (``child.Pulse``, ``lite.py``)."""
