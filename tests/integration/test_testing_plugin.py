"""The pytest plugin, as a user's test suite gets it: pytest in a fresh subprocess, in a
folder with no conftest, finds it through the ``pytest11`` entry point."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

JOBS = '''
import roadie

ran = []

class WelcomeEmail(roadie.Job, name="WelcomeEmail", queue="mail"):
    def perform(self, user_id):
        ran.append(user_id)

class Signup(roadie.Job, name="Signup"):
    def perform(self, user_id):
        WelcomeEmail.perform_async(user_id)
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(jobs=JOBS)
    return pytester


def test_fake_and_inline_fixtures(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_user='''
        import pytest
        import roadie
        import roadie.testing
        from jobs import Signup, WelcomeEmail, ran

        def test_fake(roadie_fake):
            assert isinstance(roadie_fake, roadie.testing.FakeClient)
            Signup.perform_async(7)
            assert [j["args"] for j in Signup.jobs] == [[7]]
            assert roadie_fake.drain() == 2
            assert ran == [7]

        def test_fake_rejects_a_bad_argument(roadie_fake):
            with pytest.raises(roadie.ArgumentTypeError):
                WelcomeEmail.perform_async(object())
            assert roadie_fake.jobs() == []

        def test_inline(roadie_inline):
            ran.clear()
            Signup.perform_async(8)
            assert ran == [8]

        def test_no_mode_outside_the_fixtures():
            with pytest.raises(roadie.testing.NotInFakeMode):
                WelcomeEmail.jobs
    ''')
    result = suite.runpytest_subprocess("-q")
    result.assert_outcomes(passed=4)


def test_redis_fixture_is_real_and_emptied_per_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_redis='''
        import roadie

        from jobs import WelcomeEmail

        def check(client):
            assert isinstance(client, roadie.Client)
            assert roadie.get_client() is client
            assert client.redis.dbsize() == 0
            jid = WelcomeEmail.perform_async(1)
            raws = client.redis.lrange("queue:mail", 0, -1)
            assert len(raws) == 1 and jid.encode() in raws[0]
            assert client.redis.info("server")["redis_version"]
            return client.config.redis_url

        def test_one(roadie_redis):
            check(roadie_redis)

        def test_two(roadie_redis):
            check(roadie_redis)
    ''')
    result = suite.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)


def test_the_plugin_can_be_turned_off(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_off='''
        def test_fake(roadie_fake):
            pass
    ''')
    result = suite.runpytest_subprocess("-q", "-p", "no:roadie")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'roadie_fake' not found*"])
