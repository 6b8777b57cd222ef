"""Requests that name an Octopus account alias (RATEPOOL_OCTOPUS_ACCOUNTS)
instead of a tariff: answered from the shared cache of the tariff the
account is on, so a household asking through its alias costs no extra
tariff fetch; the account record itself is fetched off the event loop and
reused for hours; failures are clear error replies."""

import unittest

from harness import FakeUpstream, Mosquitto, Ratepool, OCTOPUS_ACCOUNT
from mqtt5 import MqttClient

AGILE = "E-1R-AGILE-24-10-01-C"
GO = "E-1R-GO-VAR-22-10-14-C"


class Accounts(unittest.TestCase):
    def start(self, env=None, clock="2026-11-21T10:00:00Z,1", config=None):
        self.fake = FakeUpstream(self, clock=clock).start()
        if config:
            self.fake.config(**config)
        self.broker = Mosquitto(self).start()
        base = {"RATEPOOL_OCTOPUS_ACCOUNTS": "home:%s,away:A-FAKE0002" % OCTOPUS_ACCOUNT}
        base.update(env or {})
        self.daemon = Ratepool(self, fake=self.fake, broker=self.broker, env=base)
        self.daemon.start(wait_log=r"event=mqtt_connected")
        self.client = MqttClient(self.broker.port).connect()
        self.addCleanup(self.client.close)
        self.client.subscribe("replies/#", qos=1)
        self.n = 0

    def ask(self, series, payload=b""):
        self.n += 1
        cd = b"a%d" % self.n
        self.client.publish("ratepool/request/octopus/" + series, payload, qos=1, response_topic="replies/a",
                            correlation=cd)
        return self.client.wait_for(lambda m: m.correlation == cd, timeout=10).json()

    def test_alias_is_answered_from_the_shared_tariff_cache(self):
        self.start()
        by_alias = self.ask("home")
        self.assertEqual(by_alias["status"], "ok", by_alias)
        self.assertEqual(by_alias["series"], AGILE, "the reply names the tariff that applies")
        by_tariff = self.ask(AGILE)
        self.assertEqual(by_tariff["rates"], by_alias["rates"])
        self.ask("home")
        self.assertEqual(self.fake.call_count("octopus_rates"), 1, "one tariff fetch serves alias and tariff")
        self.assertEqual(self.fake.call_count("octopus_account"), 1, "the account record is reused")
        self.daemon.assert_clean()

    def test_many_households_on_one_tariff_share_one_fetch(self):
        self.start(env={"RATEPOOL_OCTOPUS_ACCOUNTS": "a:%s,b:%s,c:%s" % ((OCTOPUS_ACCOUNT,) * 3)})
        for alias in ("a", "b", "c", "a"):
            self.assertEqual(self.ask(alias)["status"], "ok")
        self.assertEqual(self.fake.call_count("octopus_rates"), 1)
        self.assertEqual(self.fake.call_count("octopus_account"), 3, "one record per alias")
        self.daemon.assert_clean()

    def test_range_crossing_a_tariff_change_is_answered_up_to_the_change(self):
        self.start(config={"account_agreements": [
            {"tariff_code": AGILE, "valid_from": "2026-01-01T00:00:00Z", "valid_to": "2026-11-21T12:00:00Z"},
            {"tariff_code": GO, "valid_from": "2026-11-21T12:00:00Z", "valid_to": None}]})
        r = self.ask("home", b'{"from":"2026-11-21T00:00:00Z","to":"2026-11-21T18:00:00Z"}')
        self.assertEqual(r["series"], AGILE)
        self.assertEqual(r["to"], "2026-11-21T12:00:00Z", "answered up to the change")
        self.assertTrue(all(x["end"] <= "2026-11-21T12:00:00Z" for x in r["rates"]))
        r = self.ask("home", b'{"from":"2026-11-21T12:00:00Z","to":"2026-11-21T18:00:00Z"}')
        self.assertEqual(r["series"], GO, "the next tariff from the change on")
        self.daemon.assert_clean()

    def test_unknown_account_is_an_error_and_not_asked_again_at_once(self):
        self.start()
        r = self.ask("away")
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "not_found")
        self.assertIn("A-FAKE0002", r["error"]["message"])
        self.assertEqual(self.ask("away")["error"]["code"], "not_found")
        self.assertEqual(self.fake.call_count("octopus_account"), 1)
        self.assertEqual(self.fake.calls().get("octopus_rates", 0), 0)
        self.daemon.assert_clean()

    def test_refused_api_key_says_which_setting_to_check(self):
        self.start(env={"RATEPOOL_OCTOPUS_API_KEY": "sk_wrong_key"})
        r = self.ask("home")
        self.assertEqual(r["error"]["code"], "auth_failed")
        self.assertIn("RATEPOOL_OCTOPUS_API_KEY", r["error"]["message"])
        self.assertNotIn("sk_wrong_key", r["error"]["message"])
        self.daemon.assert_clean()

    def test_account_lookup_that_hangs_ends_in_an_error_within_the_bounded_wait(self):
        self.start(env={"RATEPOOL_REQUEST_WAIT_MS": 1000, "RATEPOOL_HTTP_TIMEOUT_MS": 5000,
                        "RATEPOOL_HTTP_CONNECT_TIMEOUT_MS": 1000})
        self.fake.fault("octopus_account", "slow", delay_s=3)
        r = self.ask("home")
        self.assertEqual(r["error"]["code"], "upstream_unavailable")
        self.daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()
