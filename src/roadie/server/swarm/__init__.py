"""``roadie run -P N``: the supervisor that forks, watches and replaces the workers
(``supervisor``), what a forked worker runs (``worker``), and the start gate through
which they begin together (``startgate``)."""
