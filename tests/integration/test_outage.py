"""Upstream trouble as MQTT clients see it (issue 4, first half): an outage
with prices held (stale replies with the last good values, a stale price
document, health degraded with the provider named, upstream calls held
back by the backoff, automatic recovery), a series with nothing held
(an explicit error within the bounded wait, never a hang), an unknown
series (not_found, remembered by the negative cache), the new-series rate
limit (too_many_series, no upstream call), and WattTime tokens expiring
or revoked mid-run (refreshed once, counted, the request still served).

Each test starts its own fake upstream, mosquitto and ratepool
(RATEPOOL_BIN) on free loopback ports, most on an accelerated clock, and
ends with assert_clean(): exit 0, no sanitizer report."""

import json
import time
import unittest
from datetime import datetime

import harness
from harness import FakeUpstream, Mosquitto, Ratepool, mqtt_retained, wait_until
from mqtt5 import MqttClient

AGILE = "E-1R-AGILE-24-10-01-C"
AGILE_TOPIC = "ratepool/request/octopus/" + AGILE
AGILE_DOC = "ratepool/prices/octopus/" + AGILE
# A past week nothing has fetched yet: asking for it needs the upstream.
UNHELD = b'{"from":"2026-11-15T00:00:00Z","to":"2026-11-16T00:00:00Z"}'
SCALE = getattr(harness, "TIMEOUT_SCALE", 1)


def unix(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def forecast_window(fake, hours=2):
    """A request for the next whole 5 minutes on, `hours` long: inside
    any WattTime forecast ratepool holds (a forecast has no past)."""
    start = int(fake.now()) // 300 * 300 + 300
    return json.dumps({"from": rfc3339(start), "to": rfc3339(start + hours * 3600)}).encode()


class Service:
    """Fake upstream + mosquitto + ratepool for one test, and an MQTT 5
    client subscribed to replies/# and ratepool/#."""

    def __init__(self, test, clock, env=None, series=None, before_start=None):
        self.test = test
        self.fake = FakeUpstream(test, clock=clock).start()
        if before_start:
            before_start(self.fake)
        self.broker = Mosquitto(test).start()
        self.daemon = Ratepool(test, fake=self.fake, broker=self.broker, env=env, series=series)
        self.daemon.start(wait_log=r"event=mqtt_connected")
        self.client = MqttClient(self.broker.port).connect()
        test.addCleanup(self.client.close)
        self.client.subscribe("replies/#", qos=1)
        self.client.subscribe("ratepool/prices/#", qos=1)
        self.client.subscribe("ratepool/health", qos=1)
        self._n = 0

    def send(self, topic, payload=b""):
        self._n += 1
        cd = b"c%d" % self._n
        self.client.publish(topic, payload, qos=1, response_topic="replies/t", correlation=cd)
        return cd

    def reply(self, cd, timeout=10.0):
        m = self.client.wait_for(lambda m: m.topic == "replies/t" and m.correlation == cd, timeout=timeout * SCALE)
        return m.json()

    def ask(self, topic=AGILE_TOPIC, payload=b"", timeout=10.0):
        return self.reply(self.send(topic, payload), timeout)

    def health(self):
        """`ratepool health`: (exit code, dict or None)."""
        r = self.daemon.cli("health")
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, None

    def published(self, topic):
        """Every payload published on topic so far (dicts), oldest first."""
        return [m.json() for m in self.client.messages(topic) if m.payload]

    def last_published(self, topic):
        docs = self.published(topic)
        return docs[-1] if docs else None


class OutageWithPricesHeld(unittest.TestCase):
    SPEED = 120  # 5 simulated minutes in 2.5 s

    def test_outage_serves_stale_last_good_prices_backs_off_degrades_and_recovers(self):
        # 15:58 UK: today's Agile prices are out; the scheduler polls for
        # tomorrow's from 16:00, every 5 minutes in the window.
        svc = Service(self, clock="2026-11-21T15:58:00Z,%d" % self.SPEED, env={
            "RATEPOOL_FAILURE_THRESHOLD": 2,
            "RATEPOOL_RETRY_MAX_ATTEMPTS": 1,  # one HTTP call per fetch, so calls count fetches
            "RATEPOOL_REQUEST_WAIT_MS": 60000,  # 0.5 s real at this speed
        })
        good = svc.ask()
        self.assertEqual(good["status"], "ok")
        self.assertTrue(good["rates"])
        doc = wait_until(lambda: svc.last_published(AGILE_DOC), timeout=10, message="the price document")
        self.assertFalse(doc["stale"])
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)

        svc.fake.fault("octopus_rates", "status", times=-1, status=500)
        requests = 0
        stale = []
        deadline = time.monotonic() + 20 * SCALE
        degraded = None
        while degraded is None:
            self.assertLess(time.monotonic(), deadline, "health never degraded")
            r = svc.ask(payload=UNHELD)  # needs the upstream: nothing held
            self.assertEqual(r["status"], "error", r)
            self.assertEqual(r["error"]["code"], "upstream_unavailable", r)
            self.assertIn("HTTP 500", r["error"]["message"])
            r = svc.ask()  # held: served from the store
            self.assertIn(r["status"], ("ok", "stale"), r)
            if r["status"] == "stale":
                stale.append(r)
            requests += 2
            h = svc.last_published("ratepool/health")
            if h and h["status"] == "degraded":
                degraded = h
        calls_down = svc.fake.call_count("octopus_rates") - 1
        code, cli = svc.health()

        # Stale replies carry exactly the last good prices.
        self.assertTrue(stale, "no reply was marked stale during the outage")
        for r in stale:
            self.assertEqual(r["rates"], good["rates"])
            self.assertEqual(r["fetched_at"], good["fetched_at"])
        # The retained document keeps the prices, marked stale.
        doc = svc.last_published(AGILE_DOC)
        self.assertTrue(doc["stale"])
        self.assertEqual(doc["fetched_at"], good["fetched_at"])
        retained = json.loads(mqtt_retained(svc.broker.port, AGILE_DOC))
        self.assertTrue(retained["stale"])
        held = {(x["start"], x["end"]): x["value"] for x in retained["rates"]}
        for x in good["rates"]:
            self.assertEqual(held[(x["start"], x["end"])], x["value"])
        # Health names the provider, on MQTT and for `ratepool health`.
        self.assertTrue(any(i.startswith("octopus: ") and "consecutive failures" in i for i in degraded["issues"]),
                        degraded["issues"])
        self.assertGreaterEqual(degraded["providers"]["octopus"]["consecutive_failures"], 2)
        self.assertEqual(degraded["providers"]["octopus"]["last_error_code"], "upstream_error")
        self.assertEqual(code, 1, cli)
        self.assertEqual(cli["status"], "degraded")
        # The backoff held the upstream calls far below the requests.
        self.assertGreaterEqual(calls_down, 2)
        self.assertLessEqual(calls_down * 10, requests, (calls_down, requests))
        failures = cli["providers"]["octopus"]["consecutive_failures"]

        # The upstream comes back; nobody asks. The next scheduled poll (5
        # minutes in the publication window, or the backoff if longer)
        # finds it and everything recovers by itself.
        t_up = svc.fake.now()
        svc.fake.reset()
        wait_until(lambda: svc.health()[0] == 0, timeout=20, message="`ratepool health` exit 0")
        polls = [unix(r["t"]) for r in svc.fake.requests("octopus_rates") if r["status"] == 200]
        self.assertTrue(polls)
        bound = max(300 + 60, 30 * 2 ** (failures - 1)) + 120 + 2 * self.SPEED * SCALE
        self.assertLessEqual(polls[0] - t_up, bound, "recovered within one poll interval")
        doc = wait_until(lambda: (lambda d: d if d and not d["stale"] else None)(svc.last_published(AGILE_DOC)),
                         timeout=10, message="a price document with stale false")
        self.assertEqual(json.loads(mqtt_retained(svc.broker.port, AGILE_DOC))["stale"], False)
        # The retry of the failed range recovers first; the next poll in
        # the publication window brings tomorrow.
        wait_until(lambda: svc.last_published(AGILE_DOC)["complete_until"] > good["rates"][-1]["end"],
                   timeout=15 * SCALE, message="a poll to bring tomorrow")
        wait_until(lambda: (svc.last_published("ratepool/health") or {}).get("status") == "healthy", timeout=10,
                   message="P/health healthy")
        reply = svc.ask()
        self.assertEqual(reply["status"], "ok")
        now_held = {(x["start"], x["end"]): x["value"] for x in reply["rates"]}
        for x in good["rates"]:
            if x["start"] >= reply["from"]:
                self.assertEqual(now_held[(x["start"], x["end"])], x["value"], "prices do not change")
        svc.daemon.assert_clean()

    def test_a_request_after_the_backoff_asks_the_recovered_upstream(self):
        # One failed fetch must not park the series until its next
        # scheduled poll (16:00 here, 3.5 hours away): once the backoff
        # (at most 30 s after one failure) has passed, a request asks again.
        svc = Service(self, clock="2026-11-21T12:30:00Z,60", env={"RATEPOOL_RETRY_MAX_ATTEMPTS": 1})
        self.assertEqual(svc.ask()["status"], "ok")
        svc.fake.fault("octopus_rates", "status", times=1, status=503)
        r = svc.ask(payload=UNHELD)
        self.assertEqual(r["error"]["code"], "upstream_unavailable")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 2)
        self.assertEqual(svc.ask()["status"], "stale")
        t_fail = svc.fake.now()
        wait_until(lambda: svc.fake.now() > t_fail + 31, timeout=5, message="the backoff to pass")
        r = svc.ask(payload=UNHELD)
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(len(r["rates"]), 48)
        # This request's call, plus ratepool's own poll after the backoff
        # if it came first (it polls again by itself once the backoff is over).
        self.assertIn(svc.fake.call_count("octopus_rates"), (3, 4))
        self.assertEqual(svc.ask()["status"], "ok", "a success clears the stale mark")
        wait_until(lambda: svc.last_published(AGILE_DOC) and not svc.last_published(AGILE_DOC)["stale"],
                   timeout=10, message="the price document no longer stale")
        svc.daemon.assert_clean()


    def test_a_failed_fetch_is_retried_by_itself_after_the_backoff_with_nobody_asking(self):
        # Stale data and degraded health must not last until the next
        # scheduled poll (16:00 here) just because nobody asks again.
        svc = Service(self, clock="2026-11-21T12:30:00Z,60", env={"RATEPOOL_RETRY_MAX_ATTEMPTS": 1})
        self.assertEqual(svc.ask()["status"], "ok")
        svc.fake.fault("octopus_rates", "status", times=1, status=503)
        self.assertEqual(svc.ask(payload=UNHELD)["error"]["code"], "upstream_unavailable")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 2)
        wait_until(lambda: svc.last_published(AGILE_DOC) and svc.last_published(AGILE_DOC)["stale"],
                   timeout=10, message="the price document marked stale")
        # The next poll comes after the backoff, not at 16:00: here the
        # usual one (tomorrow's prices keep coming first).
        wait_until(lambda: svc.fake.call_count("octopus_rates") == 3, timeout=10 * SCALE,
                   message="ratepool to poll again by itself after the backoff")
        wait_until(lambda: not svc.last_published(AGILE_DOC)["stale"], timeout=10 * SCALE,
                   message="the price document no longer stale")
        self.assertEqual(svc.health()[0], 0)
        r = svc.ask(payload=UNHELD)
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(len(r["rates"]), 48)
        svc.daemon.assert_clean()


class NothingHeld(unittest.TestCase):
    def test_series_with_nothing_held_gets_upstream_unavailable_within_the_bounded_wait(self):
        svc = Service(self, clock="2026-11-21T12:34:56Z,1", env={
            "RATEPOOL_REQUEST_WAIT_MS": 1000, "RATEPOOL_RETRY_MAX_ATTEMPTS": 1})
        # 5xx: the error as soon as the fetch fails.
        svc.fake.fault("octopus_rates", "status", times=-1, status=502, match="E-1R-AGILE-24-10-01-A")
        r = svc.ask("ratepool/request/octopus/E-1R-AGILE-24-10-01-A")
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "upstream_unavailable")
        self.assertEqual(r["rates"], [])
        # Connection closed without an answer: the same.
        svc.fake.fault("octopus_rates", "close", times=-1, match="E-1R-AGILE-24-10-01-B")
        r = svc.ask("ratepool/request/octopus/E-1R-AGILE-24-10-01-B")
        self.assertEqual(r["error"]["code"], "upstream_unavailable")
        # A hanging upstream: the bounded wait (1 s) answers, not the fetch
        # (3 s); a second asker shares the fetch and its bounded wait.
        svc.fake.fault("octopus_rates", "slow", times=1, delay_s=3, match="E-1R-AGILE-24-10-01-D")
        t0 = time.monotonic()
        cd1 = svc.send("ratepool/request/octopus/E-1R-AGILE-24-10-01-D")
        cd2 = svc.send("ratepool/request/octopus/E-1R-AGILE-24-10-01-D")
        for cd in (cd1, cd2):
            r = svc.reply(cd, timeout=5)
            self.assertEqual(r["status"], "error")
            self.assertEqual(r["error"]["code"], "upstream_unavailable")
            self.assertIn("no answer in time", r["error"]["message"])
        self.assertLess(time.monotonic() - t0, 2.5 * SCALE, "answered by the bounded wait, not the slow fetch")
        # When the slow answer lands it is stored: the next request is a hit.
        svc.daemon.wait_for_log(r"event=fetch_done series=octopus/E-1R-AGILE-24-10-01-D", timeout=10)
        calls = [r for r in svc.fake.requests("octopus_rates") if "E-1R-AGILE-24-10-01-D" in r["path"]]
        self.assertEqual(len(calls), 1, "one fetch for both askers")
        r = svc.ask("ratepool/request/octopus/E-1R-AGILE-24-10-01-D")
        self.assertEqual(r["status"], "ok")
        self.assertEqual(len([r for r in svc.fake.requests("octopus_rates")
                              if "E-1R-AGILE-24-10-01-D" in r["path"]]), 1)
        svc.daemon.assert_clean()

    def test_refusals_keep_their_code_and_do_not_claim_an_outage(self):
        svc = Service(self, clock="2026-11-21T12:34:56Z,1")
        r = svc.ask("ratepool/request/watttime/FR")  # known region, not in the plan: 403
        self.assertEqual(r["error"]["code"], "forbidden")
        self.assertIn("not in your WattTime plan", r["error"]["message"])
        self.assertNotIn("unavailable", r["error"]["message"])
        r = svc.ask("ratepool/request/octopus/E-1R-AGILE-24-10-01-I")  # no region I: not a tariff code
        self.assertEqual(r["error"]["code"], "invalid")
        self.assertNotIn("unavailable", r["error"]["message"])
        self.assertNotIn("octopus_rates", svc.fake.calls())
        svc.daemon.assert_clean()


class UnknownSeries(unittest.TestCase):
    def test_unknown_series_is_not_found_and_remembered_by_the_negative_cache(self):
        svc = Service(self, clock="2026-11-21T12:34:56Z,60", env={"RATEPOOL_NEGATIVE_CACHE_S": 120})
        unknown = "ratepool/request/octopus/E-1R-NOPE-24-10-01-C"  # a product Octopus does not have: 404
        r = svc.ask(unknown)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "not_found")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        t_404 = svc.fake.now()
        # Within the negative-cache time: the same answer, no upstream call.
        for _ in range(5):
            r = svc.ask(unknown)
            self.assertEqual(r["error"]["code"], "not_found")
        self.assertLess(svc.fake.now(), t_404 + 120, "still inside the negative-cache time")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        self.assertIsNone(mqtt_retained(svc.broker.port, "ratepool/prices/octopus/E-1R-NOPE-24-10-01-C", timeout=1),
                          "an unknown series is not published")
        # After it, the upstream is asked again (it might know it now).
        wait_until(lambda: svc.fake.now() > t_404 + 121, timeout=10, message="the negative-cache time to pass")
        r = svc.ask(unknown)
        self.assertEqual(r["error"]["code"], "not_found")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 2)
        # Health does not call an unknown series an outage.
        code, h = svc.health()
        self.assertEqual(h["providers"]["octopus"]["last_error_code"], "not_found")
        svc.daemon.assert_clean()


class NewSeriesLimit(unittest.TestCase):
    def test_more_new_series_than_the_limit_are_refused_without_upstream_calls(self):
        svc = Service(self, clock="2026-11-21T12:34:56Z,20", env={"RATEPOOL_NEW_SERIES_PER_MINUTE": 3})
        zones = ["AT", "BE", "CH", "CZ", "NL"]
        # All five at once, well inside one (simulated) minute.
        cds = [svc.send("ratepool/request/energycharts/" + z) for z in zones]
        replies = [svc.reply(cd) for cd in cds]
        t_burst = svc.fake.now()
        for z, r in zip(zones[:3], replies[:3]):
            self.assertEqual(r["status"], "ok", (z, r))
        for z, r in zip(zones[3:], replies[3:]):
            self.assertEqual(r["status"], "error", (z, r))
            self.assertEqual(r["error"]["code"], "too_many_series", (z, r))
        asked = [r["path"] for r in svc.fake.requests("energycharts_price")]
        self.assertEqual(len(asked), 3)
        for z in zones[3:]:
            self.assertFalse([p for p in asked if "bzn=%s&" % z in p], "no upstream call for a refused series")
        self.assertIsNone(mqtt_retained(svc.broker.port, "ratepool/prices/energycharts/CZ", timeout=1))
        # A series already known is not new: still served, from the store.
        self.assertEqual(svc.ask("ratepool/request/energycharts/AT")["status"], "ok")
        self.assertEqual(svc.fake.call_count("energycharts_price"), 3)
        # The limit is per minute: in the next one, CZ is accepted.
        wait_until(lambda: svc.fake.now() > t_burst + 61, timeout=10, message="the next minute")
        self.assertEqual(svc.ask("ratepool/request/energycharts/CZ")["status"], "ok")
        self.assertEqual(svc.fake.call_count("energycharts_price"), 4)
        svc.daemon.assert_clean()


class WattTimeTokens(unittest.TestCase):
    SPEED = 60

    def test_token_expiring_mid_run_is_refreshed_and_counted(self):
        # Tokens live 150 s and are renewed 10 s before expiry; the
        # forecast expires every 60 s, so the third poll needs a new token.
        svc = Service(self, clock="2026-11-21T12:34:56Z,%d" % self.SPEED, series="watttime/CAISO_NORTH", env={
            "RATEPOOL_FORECAST_TTL_S": 60, "RATEPOOL_STALE_GRACE_S": 0, "RATEPOOL_TOKEN_REFRESH_MARGIN_S": 10},
            before_start=lambda fake: fake.config(token_lifetime_s=150))
        wait_until(lambda: svc.fake.call_count("watttime_forecast") >= 1, timeout=10, message="the first forecast")
        self.assertEqual(svc.fake.call_count("watttime_login"), 1)
        wait_until(lambda: svc.fake.call_count("watttime_login") >= 2, timeout=10 * 150 / self.SPEED,
                   message="a second login once the token runs out")
        # The login came with the first fetch due after the token's
        # renewal time (expiry - margin), not before; and ratepool never
        # sent the token once the fake considered it expired.
        logins = [unix(r["t"]) for r in svc.fake.requests("watttime_login")]
        self.assertGreaterEqual(logins[1] - logins[0], 150 - 10 - 2, "not renewed before it had to be")
        forecasts = svc.fake.requests("watttime_forecast")
        before = [unix(r["t"]) for r in forecasts if unix(r["t"]) < logins[1]]
        self.assertGreaterEqual(len(before), 2, "the first token served several fetches")
        self.assertLess(before[-1] - logins[0], 150 - 10 + 2)
        self.assertEqual([r["status"] for r in forecasts], [200] * len(forecasts), "no call with an expired token")
        # Every login is counted in health.
        h = wait_until(lambda: (lambda h: h if h and h["providers"]["watttime"]["token_refresh_count"] ==
                                svc.fake.call_count("watttime_login") else None)(svc.health()[1]),
                       timeout=10, message="token_refresh_count == logins")
        self.assertIsNotNone(h["providers"]["watttime"]["last_token_refresh"])
        self.assertEqual(svc.ask("ratepool/request/watttime/CAISO_NORTH", forecast_window(svc.fake))["status"], "ok")
        svc.daemon.assert_clean()

    def test_revoked_token_is_refreshed_once_and_the_request_still_succeeds(self):
        svc = Service(self, clock="2026-11-21T12:34:56Z,%d" % self.SPEED, env={
            "RATEPOOL_FORECAST_TTL_S": 60, "RATEPOOL_STALE_GRACE_S": 0})
        window = forecast_window(svc.fake)
        first = svc.ask("ratepool/request/watttime/CAISO_NORTH", window)
        self.assertEqual(first["status"], "ok", first)
        self.assertEqual(len(first["rates"]), 24)
        self.assertEqual(svc.fake.call_count("watttime_login"), 1)
        n_forecasts = svc.fake.call_count("watttime_forecast")
        _, h = wait_until(lambda: (lambda r: r if r[1] and r[1]["providers"]["watttime"]["token_refresh_count"] == 1
                                   else None)(svc.health()), timeout=10, message="one token refresh in health")

        svc.fake.config(revoke_tokens=True)
        # Past the forecast TTL (and no stale grace) the request must fetch:
        # the revoked token gets a 401, ratepool logs in once and retries.
        t0 = svc.fake.now()
        wait_until(lambda: svc.fake.now() > t0 + 61, timeout=10, message="the TTL to pass")
        r = svc.ask("ratepool/request/watttime/CAISO_NORTH", window)
        self.assertEqual(r["status"], "ok", r)
        # The request (or the scheduled refresh it waited on) fetched anew.
        after = wait_until(lambda: (lambda a: a if len(a) >= 2 else None)(
            svc.fake.requests("watttime_forecast")[n_forecasts:]), timeout=10, message="the refresh after revoking")
        self.assertEqual([x["status"] for x in after[:2]], [401, 200], "one 401, one retry that succeeds")
        self.assertEqual(svc.fake.call_count("watttime_login"), 2, "exactly one refresh")
        self.assertGreaterEqual(unix(after[0]["t"]), t0)
        h = wait_until(lambda: (lambda h: h if h and h["providers"]["watttime"]["token_refresh_count"] == 2
                                else None)(svc.health()[1]), timeout=10, message="the refresh counted")
        self.assertEqual(h["providers"]["watttime"]["consecutive_failures"], 0)
        self.assertEqual(h["providers"]["watttime"]["failed_fetches"], 0, "the 401 did not fail the fetch")
        self.assertEqual(h["status"], "healthy")
        svc.daemon.assert_clean()


class Forecasts(unittest.TestCase):
    def test_forecast_request_reaching_into_the_past_costs_no_extra_upstream_call(self):
        # The default range starts yesterday; a forecast has no past, so
        # that gap can never be filled. Asking for it again and again (past
        # the one-minute gap block) must not cost an upstream call each.
        svc = Service(self, clock="2026-11-21T12:34:56Z,60", env={"RATEPOOL_FORECAST_TTL_S": 3600})
        r = svc.ask("ratepool/request/watttime/CAISO_NORTH")
        self.assertEqual(r["status"], "partial", "the past of a forecast is missing")
        self.assertEqual(r["missing"][0]["from"], r["from"])
        self.assertLessEqual(r["missing"][-1]["to"], r["rates"][0]["start"])
        calls = svc.fake.call_count("watttime_forecast")
        t0 = svc.fake.now()
        while svc.fake.now() < t0 + 150:
            r = svc.ask("ratepool/request/watttime/CAISO_NORTH")
            self.assertEqual(r["status"], "partial")
            time.sleep(0.1)
        self.assertEqual(svc.fake.call_count("watttime_forecast"), calls)
        svc.daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()
