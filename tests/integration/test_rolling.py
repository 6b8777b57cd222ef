"""Rolling actuals (AEMO 5-minute dispatch) appear only after their
interval ends, so no slot ever holds "now": the latest interval is the
current price while it is recent, and a tracked AEMO series leaves health
healthy."""

import json
import unittest

from harness import FakeUpstream, Mosquitto, Ratepool, mqtt_retained, wait_until

CURRENT = "ratepool/prices/aemo/NSW1/current"
DOC = "ratepool/prices/aemo/NSW1"


class RollingActuals(unittest.TestCase):
    def test_latest_dispatch_interval_is_the_current_price_and_health_stays_healthy(self):
        fake = FakeUpstream(self, clock="2026-11-21T10:02:00Z,1").start()
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker, series="aemo/NSW1").start(wait_log=r"mqtt_connected")
        cur = json.loads(wait_until(lambda: mqtt_retained(broker.port, CURRENT), timeout=15,
                                    message="a retained current AEMO price"))
        doc = json.loads(wait_until(lambda: mqtt_retained(broker.port, DOC), timeout=5, message="the document"))
        last = doc["rates"][-1]
        self.assertEqual((cur["start"], cur["end"], cur["value"]), (last["start"], last["end"], last["value"]))
        self.assertLessEqual(cur["end"], "2026-11-21T10:02:00Z", "an interval that has ended: AEMO publishes after")
        wait_until(lambda: daemon.cli("health").returncode == 0, timeout=10, message="health healthy")
        health = json.loads(daemon.cli("health").stdout)
        self.assertEqual(health["issues"], [])
        daemon.assert_clean()

    def test_a_long_silent_dispatch_feed_is_not_shown_as_current(self):
        fake = FakeUpstream(self, clock="2026-11-21T10:02:00Z,1").start()
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker, series="aemo/NSW1").start(wait_log=r"mqtt_connected")
        wait_until(lambda: mqtt_retained(broker.port, CURRENT), timeout=15, message="a current AEMO price")
        daemon.stop()
        # 20 minutes later with the upstream down: the last interval is no
        # longer "now"; nothing claims to be the current price.
        fake.fault("aemo_5min", "status", times=-1, status=503)
        broker.restart()  # forget the retained topics
        later = Ratepool(self, fake=fake, broker=broker, series="aemo/NSW1", store=daemon.environment()["RATEPOOL_STORE"],
                         clock="2026-11-21T10:25:00Z,1").start(wait_log=r"mqtt_connected")
        wait_until(lambda: mqtt_retained(broker.port, DOC), timeout=10, message="the document republished")
        self.assertIsNone(mqtt_retained(broker.port, CURRENT) or None)
        wait_until(lambda: later.cli("health").returncode == 1, timeout=10, message="health degraded")
        later.assert_clean()


if __name__ == "__main__":
    unittest.main()
