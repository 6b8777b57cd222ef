"""Home Assistant MQTT discovery against the running daemon (issue 5):
device configs retained under <prefix>/device/..., one for ratepool and
one per series, with state and attributes of their own; Home Assistant's
birth message ("online" on <prefix>/status) republishes them; an empty
RATEPOOL_DISCOVERY_PREFIX publishes none; a custom prefix is used
everywhere; a series that goes idle gets an empty (retained) config, which
makes HA delete the device.

Each test starts its own fake upstream, mosquitto and ratepool
(RATEPOOL_BIN) on free loopback ports with the clock 60 times faster (an
idle minute takes a second), and ends with assert_clean(): the daemon
stops with exit 0 and no sanitizer report. The payloads' full HA rules
are checked by tests/test_discovery.c; here the point is the wiring."""

import json
import unittest

from harness import FakeUpstream, Mosquitto, MqttWatcher, Ratepool, mqtt_pub, mqtt_retained, mqtt_sub, wait_until

AGILE = "E-1R-AGILE-24-10-01-C"
SERIES = "octopus/" + AGILE
OID = "ratepool__octopus__" + AGILE
# 12:34 UTC on a November Saturday: today's Agile prices are out.
CLOCK = "2026-11-21T12:34:56Z,60"
PRICE_KEYS = {"current", "next", "today_min", "today_max", "today_avg", "tomorrow_min", "tomorrow_max",
              "tomorrow_avg"}
SERVICE_KEYS = {"problem", "consecutive_failures", "token_refreshes", "upstream_calls", "cache_hit_rate",
                "series_tracked"}


class Discovery(unittest.TestCase):

    def start(self, env=None, series=(SERIES,)):
        self.fake = FakeUpstream(self, clock=CLOCK).start()
        self.broker = Mosquitto(self).start()
        self.daemon = Ratepool(self, fake=self.fake, broker=self.broker, env=env, series=list(series))
        self.daemon.start(wait_log=r"event=mqtt_connected")
        return self.broker.port

    def retained_json(self, topic, timeout=10.0):
        """The retained payload on topic as JSON, once there is one."""
        text = wait_until(lambda: mqtt_retained(self.broker.port, topic), timeout=timeout,
                          message="a retained message on " + topic)
        return json.loads(text)

    def config(self, prefix, oid, timeout=10.0):
        return self.retained_json("%s/device/%s/config" % (prefix, oid), timeout)

    def assert_device_config(self, cfg, keys):
        self.assertIn("device", cfg)
        self.assertTrue(cfg["device"]["identifiers"])
        self.assertEqual(cfg["origin"]["name"], "ratepool")
        self.assertEqual(cfg["availability"][0]["topic"], "ratepool/status")
        self.assertEqual(set(cfg["cmps"]), keys)
        for key, c in cfg["cmps"].items():
            self.assertIn(c["p"], ("sensor", "binary_sensor"))
            self.assertTrue(c["unique_id"].endswith("_" + key))
            self.assertNotIn("object_id", c)
            self.assertTrue(c["default_entity_id"].startswith(c["p"] + "."))

    def test_configs_state_and_attributes_are_published_retained(self):
        port = self.start()
        cfg = self.config("homeassistant", OID)
        self.assert_device_config(cfg, PRICE_KEYS)
        current = cfg["cmps"]["current"]
        self.assertEqual(current["unit_of_measurement"], "GBP/kWh")
        self.assertEqual(current["state_class"], "measurement")
        self.assertNotIn("device_class", current)
        self.assertEqual(current["expire_after"], 1800 + 120)
        self.assertEqual(cfg["state_topic"], "ratepool/ha/octopus/%s/state" % AGILE)

        state = self.retained_json(cfg["state_topic"])
        self.assertIsInstance(state["current"], float)
        self.assertIsInstance(state["next"], float)
        self.assertLessEqual(state["today_min"], state["current"])
        self.assertGreaterEqual(state["today_max"], state["current"])
        self.assertIsNone(state["tomorrow_avg"])  # published at 16:00 UK

        today = self.retained_json(cfg["cmps"]["today_avg"]["json_attributes_topic"])
        self.assertEqual(len(today["rates"]), 48)
        self.assertEqual(today["resolution"], 1800)
        self.assertEqual(today["rates"][0]["start"], "2026-11-21T00:00:00Z")
        self.assertLess(len(json.dumps(today)), 16384)

        service = self.config("homeassistant", "ratepool")
        self.assert_device_config(service, SERVICE_KEYS)
        self.assertEqual(service["cmps"]["problem"]["device_class"], "problem")
        health = self.retained_json(service["state_topic"])
        self.assertEqual(health["series_tracked"], 1)
        self.assertGreaterEqual(health["upstream_calls"], 1)
        self.assertIn(health["problem"], ("ON", "OFF"))
        # Retained: visible to a Home Assistant that subscribes later.
        self.assertTrue(mqtt_sub(port, "homeassistant/device/+/config", count=2, retained_only=True))
        self.daemon.assert_clean()

    def test_home_assistant_birth_message_republishes_every_config(self):
        port = self.start()
        self.config("homeassistant", OID)
        self.config("homeassistant", "ratepool")
        watcher = MqttWatcher(self, port, "homeassistant/device/#").start()
        retained = watcher.wait_for(count=2)
        before = len(watcher.messages())
        self.assertEqual(before, len(retained))

        mqtt_pub(port, "homeassistant/status", "online")
        again = watcher.wait_for(count=before + 2, timeout=15)
        topics = {t for t, _ in again[before:]}
        self.assertEqual(topics, {"homeassistant/device/%s/config" % OID, "homeassistant/device/ratepool/config"})
        self.daemon.wait_for_log(r"event=discovery_republish")
        # The birth message is not a request: the next health still counts
        # none.
        health = MqttWatcher(self, port, "ratepool/health").start()
        n = len(health.wait_for(count=1))
        last = health.wait_for(count=n + 1)[-1]
        self.assertEqual(json.loads(last[1])["cache"]["requests"], 0)
        self.daemon.assert_clean()

    def test_empty_prefix_switches_discovery_off(self):
        port = self.start(env={"RATEPOOL_DISCOVERY_PREFIX": ""})
        # The daemon has data and publishes it...
        self.retained_json("ratepool/prices/octopus/" + AGILE)
        self.retained_json("ratepool/health")
        # ...but nothing for Home Assistant.
        self.assertEqual(mqtt_sub(port, ["homeassistant/#", "ratepool/ha/#"], count=1, timeout=1,
                                  retained_only=True), [])
        self.daemon.assert_clean()

    def test_custom_prefix_is_used_for_configs_and_the_birth_message(self):
        port = self.start(env={"RATEPOOL_DISCOVERY_PREFIX": "myha/discovery"})
        cfg = self.config("myha/discovery", OID)
        self.assert_device_config(cfg, PRICE_KEYS)
        self.config("myha/discovery", "ratepool")
        self.assertEqual(mqtt_sub(port, "homeassistant/#", count=1, timeout=1, retained_only=True), [])

        watcher = MqttWatcher(self, port, "myha/discovery/device/#").start()
        before = len(watcher.wait_for(count=2))
        mqtt_pub(port, "homeassistant/status", "online")  # not our Home Assistant
        mqtt_pub(port, "myha/discovery/status", "online")
        watcher.wait_for(count=before + 2, timeout=15)
        self.daemon.assert_clean()

    def test_series_that_goes_idle_gets_an_empty_config(self):
        port = self.start(env={"RATEPOOL_SERIES_IDLE_S": "60"}, series=())
        config_topic = "homeassistant/device/%s/config" % OID
        watcher = MqttWatcher(self, port, [config_topic, "ratepool/ha/octopus/%s/state" % AGILE]).start()
        # A request registers demand: the series is tracked and discovered.
        mqtt_pub(port, "ratepool/request/octopus/" + AGILE, "", qos=1)
        first = watcher.wait_for(lambda m: m[0] == config_topic and m[1], timeout=15)
        self.assertIn("cmps", json.loads(first[0][1]))
        # Nobody asks again for a (simulated) minute: the device goes.
        watcher.wait_for(lambda m: m[0] == config_topic and m[1] == "", timeout=20)
        self.daemon.wait_for_log(r"event=discovery_removed series=octopus/" + AGILE)
        wait_until(lambda: mqtt_retained(port, config_topic, timeout=1) is None, timeout=5,
                   message="the config no longer retained")
        self.assertIsNone(mqtt_retained(port, "ratepool/ha/octopus/%s/state" % AGILE, timeout=1))
        self.daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()
