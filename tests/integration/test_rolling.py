"""Upstreams with a limited past. Rolling actuals (AEMO 5-minute dispatch)
appear only after their interval ends, so no slot ever holds "now": the
latest interval is the current price while it is recent, and a tracked
AEMO series leaves health healthy. Tibber serves only today and tomorrow:
the part of a request before today can never be fetched and costs no
upstream call, however often it is asked for."""

import json
import unittest

import time

from harness import FakeUpstream, Mosquitto, Ratepool, mqtt_retained, wait_until, TIBBER_HOME
from mqtt5 import MqttClient

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


class StartUp(unittest.TestCase):
    def test_a_new_series_is_not_reported_missing_before_its_first_fetch_ends(self):
        fake = FakeUpstream(self, clock="2026-11-21T10:00:00Z,1").start()
        fake.fault("energycharts_price", "slow", delay_s=3)
        broker = Mosquitto(self).start()
        client = MqttClient(broker.port).connect()
        self.addCleanup(client.close)
        client.subscribe("ratepool/health", qos=1)
        daemon = Ratepool(self, fake=fake, broker=broker, series="energycharts/DE-LU").start()
        wait_until(lambda: fake.call_count("energycharts_price") == 1, timeout=10, message="the first fetch")
        time.sleep(1.5)  # health goes out at most once a second: give it the chance to be wrong
        healths = [m.json() for m in client.messages("ratepool/health") if m.payload]
        self.assertTrue(healths)
        for h in healths:
            self.assertFalse(any("current slot" in i for i in h["issues"]), h["issues"])
        wait_until(lambda: daemon.cli("health").returncode == 0, timeout=10, message="healthy after the fetch")
        daemon.assert_clean()


class LimitedHistory(unittest.TestCase):
    def test_tibber_past_before_today_is_never_fetched_again(self):
        # 11:00 CET: today is published, tomorrow not yet (13:00). Default
        # requests reach 24 h back, before anything Tibber serves.
        fake = FakeUpstream(self, clock="2026-11-21T10:00:00Z,60").start()
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker).start(wait_log=r"mqtt_connected")
        client = MqttClient(broker.port).connect()
        self.addCleanup(client.close)
        client.subscribe("r/#", qos=1)
        topic = "ratepool/request/tibber/" + TIBBER_HOME
        for i in range(20):  # one request every 30 simulated seconds, 10 minutes
            cd = b"t%d" % i
            client.publish(topic, b"", qos=1, response_topic="r/t", correlation=cd)
            reply = client.wait_for(lambda m: m.correlation == cd, timeout=10).json()
            self.assertNotEqual(reply["status"], "error", reply)
            self.assertTrue(reply["rates"])
            time.sleep(0.5)
        self.assertEqual(fake.call_count("tibber_graphql"), 1, "the unfillable past cost upstream calls")
        daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()
