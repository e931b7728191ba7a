"""``roadie.server.fetch.fetch_order``: several processors' acknowledgements in the
order their jobs were dealt (so each ``LREM -1`` finds its job at the list's end)."""

from __future__ import annotations

from roadie.server.fetch import fetch_order


def test_acknowledgements_are_taken_in_turn_from_each_processor() -> None:
    # Jobs 0..7 dealt in turn to three processors: 0, 3, 6 / 1, 4, 7 / 2, 5.
    dealt = [[b"0", b"3", b"6"], [b"1", b"4", b"7"], [b"2", b"5"]]
    assert fetch_order(dealt) == [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7"]


def test_nothing_is_lost_or_repeated_whatever_the_lengths() -> None:
    groups = [[], [b"a"], [b"b", b"c", b"d"], [b"e", b"f"]]
    out = fetch_order(iter(groups))
    assert sorted(out) == sorted(raw for g in groups for raw in g)
    assert out == [b"a", b"b", b"e", b"c", b"f", b"d"]
    assert fetch_order([]) == []
