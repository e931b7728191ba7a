"""current.py: the default client, lent to a block and put back (no Redis)."""

from __future__ import annotations

import roadie
import roadie.current
import roadie.testing
from unit.unit_support import NOWHERE


def test_using_none_leaves_no_default_client_for_the_block() -> None:
    real = roadie.Client(NOWHERE)
    with roadie.current.using(real):
        with roadie.current.using(None) as none:
            assert none is None
            assert roadie.current.configured() is None
        assert roadie.current.configured() is real
    assert roadie.testing.using is roadie.current.using
