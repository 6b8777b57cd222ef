"""`ratepool fetch PROVIDER SERIES` against the fake upstream, for every
provider: the same code path as the daemon, normalised slots as JSON on
stdout, a clear message and a non-zero exit on failure."""

import json
import unittest
from datetime import datetime, timezone

from harness import FakeUpstream, Ratepool, OCTOPUS_ACCOUNT, TIBBER_HOME

# Mid-afternoon in every zone that matters, after the EU day-ahead (13:00
# CET) and before Agile (16:00 London) publications.
CLOCK = "2026-11-21T14:00:00Z,1"


def rfc3339(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FetchCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = FakeUpstream(clock=CLOCK).start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()
        self.rp = Ratepool(self, fake=self.fake, env={
            "RATEPOOL_OCTOPUS_ACCOUNTS": "home:%s" % OCTOPUS_ACCOUNT})

    def fetch(self, provider, series, *extra):
        r = self.rp.cli("fetch", provider, series, *extra)
        self.assertEqual(r.returncode, 0, "fetch %s/%s failed: %s" % (provider, series, r.stderr))
        doc = json.loads(r.stdout)
        self.assertEqual(doc["provider"], provider)
        self.assertEqual(doc["series"], series)
        rates = doc["rates"]
        self.assertTrue(rates, "no rates for %s/%s" % (provider, series))
        for a, b in zip(rates, rates[1:]):
            self.assertLessEqual(a["end"], b["start"], "slots overlap or are out of order")
        for r_ in rates:
            self.assertIsInstance(r_["value"], (int, float))
            self.assertLess(r_["start"], r_["end"])
        return doc

    def test_octopus_tariff_is_fetched_in_gbp_per_kwh(self):
        doc = self.fetch("octopus", "E-1R-AGILE-24-10-01-C")
        self.assertEqual(doc["unit"], "GBP/kWh")
        self.assertEqual(doc["resolution"], 1800)
        self.assertEqual(self.fake.call_count("octopus_rates"), doc["upstream_calls"])

    def test_octopus_account_alias_resolves_to_its_tariff(self):
        doc = self.fetch("octopus", "home")
        self.assertEqual(doc["unit"], "GBP/kWh")
        self.assertEqual(self.fake.call_count("octopus_account"), 1)
        self.assertGreaterEqual(self.fake.call_count("octopus_rates"), 1)

    def test_tibber_home_is_fetched_in_quarter_hours(self):
        doc = self.fetch("tibber", TIBBER_HOME)
        self.assertTrue(doc["unit"].endswith("/kWh"))
        self.assertEqual(doc["resolution"], 900)

    def test_watttime_region_logs_in_then_fetches_the_forecast(self):
        now = self.fake.now()
        doc = self.fetch("watttime", "CAISO_NORTH", "--from", rfc3339(now - now % 300),
                         "--to", rfc3339(now - now % 300 + 3600))
        self.assertEqual(self.fake.call_count("watttime_login"), 1)
        self.assertEqual(self.fake.call_count("watttime_forecast"), 1)
        self.assertEqual(doc["resolution"], 300)

    def test_aemo_region_is_fetched_in_aud_per_kwh(self):
        now = self.fake.now()
        doc = self.fetch("aemo", "NSW1", "--from", rfc3339(now - 3600 - now % 300),
                         "--to", rfc3339(now - now % 300))
        self.assertEqual(doc["unit"], "AUD/kWh")
        self.assertEqual(doc["resolution"], 300)

    def test_energycharts_zone_is_fetched_in_eur_per_kwh(self):
        doc = self.fetch("energycharts", "DE-LU")
        self.assertEqual(doc["unit"], "EUR/kWh")

    def test_unknown_tariff_fails_with_a_clear_message(self):
        r = self.rp.cli("fetch", "octopus", "E-1R-NO-SUCH-TARIFF-C")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not_found", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_upstream_down_fails_with_the_error_class_and_no_output(self):
        self.fake.fault("energycharts_price", "status", times=-1, status=503)
        r = self.rp.cli("fetch", "energycharts", "DE-LU")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("upstream_error", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_hostile_series_id_is_refused_before_any_call(self):
        r = self.rp.cli("fetch", "octopus", "../../etc/passwd")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.fake.calls().get("octopus_rates", 0), 0)


if __name__ == "__main__":
    unittest.main()
