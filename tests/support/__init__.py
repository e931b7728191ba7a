"""Harness code shared by the test suites (tests/ is on ``sys.path``: pyproject.toml's
``pythonpath``), imported as ``from support.<module> import ...``:

* ``wait``: ``wait_until`` and ``poll``, waiting on a condition with a deadline.
* ``redis``: a real Redis as tests drive and read it (``overfill``, ``NOEVICTION``,
  ``left_anywhere`` and the other counts of where roadie keeps jobs).
* ``procs``: real child processes (``Harness``, ``Proc``) and their environment
  (``base_env``, ``FAST_ENV``, ``DEFAULT_ENV``).
* ``reports``: ``attach``, which puts what processes logged into a failed test's report
  (a pytest plugin, for its ``pytest_runtest_makereport`` hook).
* ``fixtures``: ``make_harness``, ``use_client``, ``import_from`` (a pytest plugin).

Code of one suite only stays in its folder (``tests/faults/fault_support.py``...).
"""
