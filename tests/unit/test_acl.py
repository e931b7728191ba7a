"""acl.py: the one list of commands roadie sends, the docs' rule, the probes (no Redis)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from roadie import acl
from roadie.keys import Keys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connections.md"


def test_the_documented_rule_is_the_constant() -> None:
    text = DOCS.read_text()
    block = text.split("ACL SETUSER roadie reset on >CHANGE-ME ~* resetchannels -@all", 1)[1]
    block = block.split("```", 1)[0]
    documented = [word.removeprefix("+") for word in block.split()]
    assert sorted(documented) == sorted([*acl.COMMANDS, *acl.OPTIONAL_COMMANDS])
    assert sorted(acl.acl_rule().split()) == sorted(["-@all", *(f"+{c}" for c in documented)])


def test_every_command_of_the_lua_scripts_is_in_the_list() -> None:
    for script in resources.files("roadie").joinpath("lua").iterdir():
        if script.name.endswith(".lua"):
            called = re.findall(r"redis\.p?call\('(\w+)'", script.read_text())
            assert called, script.name
            assert {c.lower() for c in called} <= set(acl.COMMANDS), script.name


def test_the_probes_cover_every_queued_command_and_name_real_keys() -> None:
    keys = Keys("jobs")
    probes = acl.probes(keys, ["critical", "default"], "host:1:abc")
    direct = {"ping", "info", "select", "exec", "discard", "watch", "unwatch", "multi"}
    assert {p.command for p in probes} | direct == set(acl.COMMANDS)
    for probe in probes:
        assert probe.command.split("|")[0] == probe.argv[0].lower(), probe
        assert all(k.startswith("jobs:") for k in probe.keys), probe
    assert ("jobs:queue:critical", "jobs:roadie:inflight:host:1:abc") in {p.keys for p in probes}
    assert {"jobs:schedule", "jobs:retry", "jobs:dead", "jobs:processes",
            "jobs:roadie:alive:host:1:abc", "jobs:host:1:abc"} <= {
        k for p in probes for k in p.keys}


def test_missing_says_what_to_grant() -> None:
    missing = acl.Missing(commands=["zadd", "evalsha"])
    assert missing.describe() == (
        "the Redis user may not use commands zadd, evalsha: grant +zadd +evalsha in the "
        "user's ACL rule (docs/connections.md has the whole rule roadie needs)")
    assert not acl.Missing()
