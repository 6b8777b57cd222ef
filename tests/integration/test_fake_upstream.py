"""Tests of the fake upstream itself (tests/fake_upstream/README.md is the
contract) and of the harness pieces that do not need the daemon.

Expected prices are computed here from the README's formulas, not by
importing the fake's functions, so the README and the fake are checked
against each other.
"""

import base64
import http.client
import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FROZEN = "2026-11-21T17:00:00Z,0.000001"  # 17:00 UTC: after every publication
NOW = 1795280400  # 2026-11-21T17:00:00Z
AGILE = "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/"
TIBBER_Q = ('{ viewer { home(id: "%s") { currentSubscription { priceInfo(resolution: %s) {'
            ' current { total energy tax startsAt level currency } today { total startsAt level }'
            ' tomorrow { total startsAt } } } } } }')
AUTH_Q = ('query {\n  account(accountNumber: "A-FAKE0001") {\n    electricityAgreements(active: true) {\n'
          '      meterPoint { mpan agreements(includeInactive: true) { validFrom validTo tariff {\n'
          '        ... on TariffType { productCode tariffCode }\n        ... on StandardTariff { unitRate }\n'
          '        ... on HalfHourlyTariff { unitRates { validFrom validTo value } } } } }\n'
          '      tariff { ... on TariffType { tariffCode } }\n    }\n  }\n}')


def ts(text):
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def w(t):
    return math.sin(2 * math.pi * t / 86400)


def v(t):
    return math.sin(2 * math.pi * t / 604800)


def agile(t):
    return round(15 + 12 * w(t) + 4 * v(t), 2)


def tibber_e(t):
    return round(0.10 + 0.08 * w(t) + 0.02 * v(t), 4)


def call(fake, method, path, body=None, headers=None, timeout=10, host=None):
    """(status, headers dict (lower-case names), body bytes) over a fresh
    connection."""
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if host:
            hdrs["Host"] = host
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): val for k, val in r.getheaders()}, data
    finally:
        conn.close()


def get_json(fake, path, headers=None, status=200):
    st, hdrs, data = call(fake, "GET", path, headers=headers)
    if st != status:
        raise AssertionError("GET %s: %d %r" % (path, st, data[:300]))
    return json.loads(data)


def basic(user, pw=""):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def kraken(fake, query, variables=None, token=None):
    hdrs = {"Authorization": token} if token else {}
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    st, _, data = call(fake, "POST", "/v1/graphql/", body, hdrs)
    return st, json.loads(data)


def kraken_token(fake):
    st, d = kraken(fake, "mutation obtainKrakenToken($input: ObtainJSONWebTokenInput!) { obtainKrakenToken("
                         "input: $input) { token refreshToken refreshExpiresIn payload } }",
                   {"input": {"APIKey": "sk_test_fake"}})
    assert st == 200, d
    return d["data"]["obtainKrakenToken"]


def jwt_payload(token):
    seg = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def tibber(fake, query, token="tibber-test-token", form=False):
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    if form:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        body = "query=" + quote(query)
    else:
        body = {"query": query}
    st, _, data = call(fake, "POST", "/v1-beta/gql", body, hdrs)
    return st, json.loads(data)


def price_info(fake, resolution="QUARTER_HOURLY"):
    st, d = tibber(fake, TIBBER_Q % (harness.TIBBER_HOME, resolution))
    assert st == 200 and "errors" not in d, d
    return d["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]


def watttime_token(fake):
    return get_json(fake, "/login", basic("ratepool", "fake-password"))["token"]


def rates_url(path=AGILE, **params):
    q = "&".join("%s=%s" % (k, quote(str(val), safe="")) for k, val in params.items())
    return path + ("?" + q if q else "")


class FrozenFake(unittest.TestCase):
    """One fake with the clock held at 2026-11-21T17:00:00Z."""

    @classmethod
    def setUpClass(cls):
        cls.fake = harness.FakeUpstream(cls, clock=FROZEN).start()

    def setUp(self):
        self.fake.reset()


class TestOctopus(FrozenFake):
    def test_day_window_has_48_half_hours_newest_first_with_formula_values(self):
        d = get_json(self.fake, rates_url(period_from="2026-11-20T00:00:00Z", period_to="2026-11-21T00:00:00Z"))
        self.assertEqual(d["count"], 48)
        self.assertIsNone(d["next"])
        self.assertIsNone(d["previous"])
        starts = [ts(r["valid_from"]) for r in d["results"]]
        self.assertEqual(starts, sorted(starts, reverse=True))
        self.assertEqual(starts[-1], ts("2026-11-20T00:00:00Z"))
        for r in d["results"]:
            s = ts(r["valid_from"])
            self.assertEqual(ts(r["valid_to"]), s + 1800)
            self.assertTrue(r["valid_from"].endswith("Z"))
            self.assertIsNone(r["payment_method"])
            self.assertAlmostEqual(r["value_inc_vat"], agile(s), delta=0.0051)
            self.assertAlmostEqual(r["value_exc_vat"], r["value_inc_vat"] / 1.05, delta=1e-5)
        self.assertEqual(list(d["results"][0]), ["value_exc_vat", "value_inc_vat", "valid_from", "valid_to",
                                                 "payment_method"])

    def test_rates_carry_cache_headers(self):
        st, hdrs, _ = call(self.fake, "GET", AGILE)
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["content-type"], "application/json")
        self.assertEqual(hdrs["cache-control"], "max-age=300")
        self.assertEqual(hdrs["access-control-allow-origin"], "*")

    def test_tomorrow_is_published_after_16_uk(self):
        d = get_json(self.fake, rates_url(period_from="2026-11-22T00:00:00Z", period_to="2026-11-23T00:00:00Z"))
        self.assertEqual(d["count"], 48)
        d = get_json(self.fake, rates_url(period_from="2026-11-23T00:00:00Z"))
        self.assertEqual(d, {"count": 0, "next": None, "previous": None, "results": []})

    def test_unfiltered_first_page_is_newest_100_with_next(self):
        d = get_json(self.fake, AGILE)
        self.assertEqual(len(d["results"]), 100)
        self.assertEqual(d["results"][0]["valid_to"], "2026-11-23T00:00:00Z")
        self.assertEqual(d["count"], (ts("2026-11-23T00:00:00Z") - ts("2020-01-01T00:00:00Z")) // 1800)
        self.assertEqual(d["next"], "http://127.0.0.1:%d%s?page=2" % (self.fake.port, AGILE))

    def test_pagination_links_follow_drf_and_cover_every_row_once(self):
        url = rates_url(period_from="2026-11-20T00:00:00Z", period_to="2026-11-21T00:00:00Z", page_size=10)
        host = "upstream.test:8443"
        d = json.loads(call(self.fake, "GET", url, host=host)[2])
        self.assertEqual(d["count"], 48)
        self.assertEqual(d["next"], "http://upstream.test:8443" + AGILE + "?page=2&page_size=10&period_from="
                         "2026-11-20T00%3A00%3A00Z&period_to=2026-11-21T00%3A00%3A00Z")
        seen = [r["valid_from"] for r in d["results"]]
        pages = 1
        while d["next"]:
            nxt = urlsplit(d["next"])
            d = json.loads(call(self.fake, "GET", nxt.path + "?" + nxt.query, host=host)[2])
            pages += 1
            seen += [r["valid_from"] for r in d["results"]]
            if pages == 2:
                self.assertEqual(d["previous"], "http://upstream.test:8443" + AGILE + "?page_size=10&period_from="
                                 "2026-11-20T00%3A00%3A00Z&period_to=2026-11-21T00%3A00%3A00Z")
            if pages == 3:
                self.assertIn("?page=2&", d["previous"])
        self.assertEqual(pages, 5)
        self.assertEqual(len(seen), 48)
        self.assertEqual(len(set(seen)), 48)

    def test_config_page_size_and_cap(self):
        self.fake.config(page_size=7)
        d = get_json(self.fake, rates_url(period_from="2026-11-20T00:00:00Z", period_to="2026-11-21T00:00:00Z"))
        self.assertEqual(len(d["results"]), 7)
        d = get_json(self.fake, rates_url(page_size=5000))
        self.assertEqual(len(d["results"]), 1500)

    def test_invalid_page_is_404(self):
        st, _, data = call(self.fake, "GET", rates_url(period_from="2026-11-20T00:00:00Z",
                                                       period_to="2026-11-21T00:00:00Z", page=2))
        self.assertEqual((st, json.loads(data)), (404, {"detail": "Invalid page."}))
        st, _, data = call(self.fake, "GET", rates_url(page="x"))
        self.assertEqual(st, 404)

    def test_uk_dst_days_have_46_and_50_half_hours(self):
        for day, nxt, n in (("2026-03-29", "2026-03-30", 46), ("2026-10-25", "2026-10-26", 50),
                            ("2026-06-01", "2026-06-02", 48)):
            d = get_json(self.fake, rates_url(period_from=day, period_to=nxt))
            self.assertEqual(d["count"], n, day)
        d = get_json(self.fake, rates_url(period_from="2026-06-01T00:00:00", period_to="2026-06-01T01:00:00"))
        self.assertEqual([r["valid_from"] for r in d["results"]], ["2026-05-31T23:30:00Z", "2026-05-31T23:00:00Z"])

    def test_overlap_semantics_of_the_period_filter(self):
        d = get_json(self.fake, rates_url(period_from="2026-11-20T10:15:00Z", period_to="2026-11-20T11:15:00Z"))
        self.assertEqual([r["valid_from"] for r in d["results"]],
                         ["2026-11-20T11:00:00Z", "2026-11-20T10:30:00Z", "2026-11-20T10:00:00Z"])
        d = get_json(self.fake, rates_url(period_from="2026-11-20T10:00:00+01:00", period_to="2026-11-20T10:00:00+01:00"))
        self.assertEqual(d["count"], 0)

    def test_period_errors_have_the_real_bodies(self):
        cases = [
            ("/?period_from=2026-11-20T00:00:00+01:00", {"period_from": ["Enter a valid date/time."]}),
            ("/?period_from=yesterday", {"period_from": ["Enter a valid date/time."]}),
            ("/?period_to=2026-11-20T00:00:00Z",
             {"period_from": ["This field is required when providing a `period_to`."]}),
            ("/?period_from=2026-11-21T00:00:00Z&period_to=2026-11-20T00:00:00Z",
             {"period_from": ["Must not be greater than `period_to`."]}),
        ]
        for q, body in cases:
            st, _, data = call(self.fake, "GET", AGILE + q[1:])
            self.assertEqual((st, json.loads(data)), (400, body), q)

    def test_unknown_product_or_mismatched_tariff_is_404(self):
        for path in ("/v1/products/NOPE-24-01-01/electricity-tariffs/E-1R-NOPE-24-01-01-C/standard-unit-rates/",
                     "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-23-12-06-C/standard-unit-rates/",
                     "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-I/standard-unit-rates/",
                     "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/day-unit-rates/",
                     "/v1/products/NOPE/"):
            st, _, data = call(self.fake, "GET", path)
            self.assertEqual((st, json.loads(data)), (404, {"detail": "Not found."}), path)

    def test_missing_trailing_slash_redirects(self):
        st, hdrs, _ = call(self.fake, "GET", AGILE.rstrip("/") + "?page_size=3")
        self.assertEqual(st, 301)
        self.assertEqual(hdrs["location"], AGILE + "?page_size=3")

    def test_flexible_tariff_has_direct_debit_pairs_and_open_end(self):
        path = "/v1/products/VAR-22-11-01/electricity-tariffs/E-1R-VAR-22-11-01-C/standard-unit-rates/"
        d = get_json(self.fake, path + "?period_from=2026-01-01T00:00:00Z")
        rows = d["results"]
        self.assertEqual(d["count"], 8)  # four quarters of 2026 so far, two rows each
        self.assertEqual([r["payment_method"] for r in rows[:2]], ["DIRECT_DEBIT", "NON_DIRECT_DEBIT"])
        self.assertEqual(rows[0]["valid_from"], rows[1]["valid_from"])
        self.assertEqual(rows[0]["valid_from"], "2026-09-30T23:00:00Z")
        self.assertIsNone(rows[0]["valid_to"])
        self.assertIsNone(rows[1]["valid_to"])
        self.assertEqual(rows[2]["valid_to"], "2026-09-30T23:00:00Z")
        q = (2026 - 2020) * 4 + 3
        self.assertEqual(rows[0]["value_inc_vat"], 22 + q % 5)
        self.assertEqual(rows[1]["value_inc_vat"], 22 + q % 5 + 1.5)

    def test_fixed_tariff_is_one_open_ended_row(self):
        path = "/v1/products/OE-FIX-12M-24-11-01/electricity-tariffs/E-1R-OE-FIX-12M-24-11-01-C/standard-unit-rates/"
        d = get_json(self.fake, path + "?period_from=2026-11-20T00:00:00Z&period_to=2026-11-21T00:00:00Z")
        self.assertEqual(d["count"], 1)
        r = d["results"][0]
        self.assertEqual((r["value_inc_vat"], r["valid_from"], r["valid_to"]), (24.5, "2020-01-01T00:00:00Z", None))

    def test_standing_charges_and_product_detail(self):
        d = get_json(self.fake, "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/"
                                "standing-charges/")
        self.assertEqual(d["results"], [{"value_exc_vat": 37.6525, "value_inc_vat": 39.535125,
                                         "valid_from": "2020-01-01T00:00:00Z", "valid_to": None,
                                         "payment_method": None}])
        p = get_json(self.fake, "/v1/products/AGILE-24-10-01/")
        self.assertEqual(p["code"], "AGILE-24-10-01")
        self.assertEqual(len(p["single_register_electricity_tariffs"]), 14)
        c = p["single_register_electricity_tariffs"]["_C"]["direct_debit_monthly"]
        self.assertEqual(c["code"], "E-1R-AGILE-24-10-01-C")
        self.assertEqual(c["standard_unit_rate_inc_vat"], agile(NOW))

    def test_account_needs_the_api_key(self):
        path = "/v1/accounts/A-FAKE0001/"
        d = get_json(self.fake, path, basic("sk_test_fake"))
        self.assertEqual(d["number"], "A-FAKE0001")
        points = d["properties"][0]["electricity_meter_points"]
        imp = [p for p in points if not p["is_export"]][0]
        self.assertEqual(imp["agreements"][-1], {"tariff_code": "E-1R-AGILE-24-10-01-C",
                                                 "valid_from": "2025-02-15T00:00:00Z", "valid_to": None})
        self.assertTrue(any(a["valid_from"] == a["valid_to"] for a in imp["agreements"]))
        self.assertTrue(any(p["is_export"] for p in points))
        st, hdrs, data = call(self.fake, "GET", path)
        self.assertEqual((st, json.loads(data)), (401, {"detail": "Authentication credentials were not provided."}))
        self.assertEqual(hdrs["www-authenticate"], 'Basic realm="api"')
        st, _, data = call(self.fake, "GET", path, headers=basic("sk_live_wrong"))
        self.assertEqual((st, json.loads(data)), (401, {"detail": "Invalid API key."}))
        st, _, data = call(self.fake, "GET", "/v1/accounts/A-12345678/", headers=basic("sk_test_fake"))
        self.assertEqual((st, json.loads(data)), (404, {"detail": "Not found."}))
        st, hdrs, _ = call(self.fake, "GET", "/v1/accounts/nope/", headers=basic("sk_test_fake"))
        self.assertEqual((st, hdrs["content-type"]), (404, "text/html"))

    def test_account_agreements_config(self):
        ag = [{"tariff_code": "E-1R-VAR-22-11-01-C", "valid_from": "2026-01-01T00:00:00Z", "valid_to": None}]
        self.fake.config(account_agreements=ag)
        d = get_json(self.fake, "/v1/accounts/A-FAKE0001/", basic("sk_test_fake"))
        self.assertEqual(d["properties"][0]["electricity_meter_points"][0]["agreements"], ag)

    def test_meter_point_and_gsp_lookups(self):
        self.assertEqual(get_json(self.fake, "/v1/electricity-meter-points/1200023305967/")["gsp"], "_C")
        d = get_json(self.fake, "/v1/industry/grid-supply-points/?postcode=SW1A%201AA")
        self.assertEqual(d["results"], [{"group_id": "_C"}])


class TestKraken(FrozenFake):
    def test_token_from_api_key_is_a_jwt_with_one_hour_life(self):
        t = kraken_token(self.fake)
        self.assertEqual(list(t), ["token", "refreshToken", "refreshExpiresIn", "payload"])
        p = jwt_payload(t["token"])
        self.assertEqual(p, t["payload"])
        self.assertEqual(p["iat"], NOW)
        self.assertEqual(p["exp"] - p["iat"], 3600)
        self.assertEqual(p["gty"], "API-KEY")
        self.assertEqual(p["iss"], "https://api.octopus.energy/v1/graphql/")
        self.assertEqual(t["refreshExpiresIn"], NOW + 7 * 86400)
        head = t["token"].split(".")[0]
        self.assertEqual(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["typ"], "JWT")

    def test_all_three_client_forms_are_accepted(self):
        st, d = kraken(self.fake, "mutation($apiKey:String!){obtainKrakenToken(input: {APIKey: $apiKey}){token}}",
                       {"apiKey": "sk_test_fake"})
        self.assertEqual(list(d["data"]["obtainKrakenToken"]), ["token"])
        q = ('mutation {\n\tobtainKrakenToken(input: { APIKey: "sk_test_fake" }) {\n\t\ttoken\n'
             '    refreshToken\n    refreshExpiresIn\n\t}\n}')
        st, d = kraken(self.fake, q)
        self.assertEqual(st, 200)
        self.assertEqual(list(d["data"]["obtainKrakenToken"]), ["token", "refreshToken", "refreshExpiresIn"])

    def test_wrong_key_is_kt_ct_1139(self):
        st, d = kraken(self.fake, "mutation($apiKey:String!){obtainKrakenToken(input: {APIKey: $apiKey}){token}}",
                       {"apiKey": "sk_live_wrong"})
        self.assertEqual(st, 200)
        self.assertEqual(d["data"], {"obtainKrakenToken": None})
        e = d["errors"][0]
        self.assertEqual(e["message"], "Invalid data.")
        self.assertEqual(e["path"], ["obtainKrakenToken"])
        self.assertEqual(e["extensions"]["errorCode"], "KT-CT-1139")
        self.assertEqual(e["extensions"]["validationErrors"][0]["inputPath"], ["input", "apiKey"])

    def test_refresh_token_gives_a_new_token(self):
        t = kraken_token(self.fake)
        st, d = kraken(self.fake, "mutation($r:String!){obtainKrakenToken(input:{refreshToken:$r}){token payload}}",
                       {"r": t["refreshToken"]})
        self.assertEqual(d["data"]["obtainKrakenToken"]["payload"]["gty"], "REFRESH-TOKEN")
        st, d = kraken(self.fake, 'mutation{obtainKrakenToken(input:{refreshToken:"nope"}){token}}')
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1135")

    def test_account_query_with_token(self):
        token = kraken_token(self.fake)["token"]
        st, d = kraken(self.fake, AUTH_Q, token=token)
        self.assertEqual(st, 200, d)
        ags = d["data"]["account"]["electricityAgreements"]
        self.assertEqual(len(ags), 1)
        self.assertEqual(ags[0]["tariff"], {"tariffCode": "E-1R-AGILE-24-10-01-C"})
        history = ags[0]["meterPoint"]["agreements"]
        self.assertEqual(history[-1]["validFrom"], "2025-02-15T00:00:00+00:00")
        self.assertIsNone(history[-1]["validTo"])
        rates = history[-1]["tariff"]["unitRates"]
        self.assertEqual(rates[0]["validFrom"], "2026-11-21T00:00:00+00:00")
        self.assertEqual(len(rates), 96)  # today and the published tomorrow
        self.assertEqual(rates[0]["value"], agile(ts("2026-11-21T00:00:00Z")))
        self.assertIn("unitRate", history[0]["tariff"])  # the VAR agreement

    def test_bad_tokens_get_the_real_error_codes(self):
        st, d = kraken(self.fake, AUTH_Q)
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1112")
        st, d = kraken(self.fake, AUTH_Q, token="garbage")
        self.assertEqual((st, d["data"]), (200, {"account": None}))
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1143")
        self.assertEqual(d["errors"][0]["path"], ["account"])
        token = kraken_token(self.fake)["token"]
        st, d = kraken(self.fake, '{ account(accountNumber: "A-12345678") { number } }', token=token)
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1111")

    def test_revoked_and_expired_tokens(self):
        t = kraken_token(self.fake)
        self.fake.config(revoke_tokens=True)
        st, d = kraken(self.fake, AUTH_Q, token=t["token"])
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1143")
        st, d = kraken(self.fake, "mutation($r:String!){obtainKrakenToken(input:{refreshToken:$r}){token}}",
                       {"r": t["refreshToken"]})
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1135")
        self.assertNotIn("errors", kraken(self.fake, AUTH_Q, token=kraken_token(self.fake)["token"])[1])
        self.fake.config(token_lifetime_s=0, kraken_expired_code="KT-CT-1124")
        t = kraken_token(self.fake)
        self.assertEqual(t["payload"]["exp"], t["payload"]["iat"])
        st, d = kraken(self.fake, AUTH_Q, token=t["token"])
        self.assertEqual(d["errors"][0]["extensions"], {"errorType": "APPLICATION", "errorCode": "KT-CT-1124",
                                                        "errorDescription": ""})

    def test_syntax_and_validation_errors_are_400(self):
        st, d = kraken(self.fake, "invalidquery")
        self.assertEqual(st, 400)
        self.assertTrue(d["errors"][0]["message"].startswith("Syntax Error"))
        st, d = kraken(self.fake, "mutation { obtainKrakenToken(input: {APIKey: \"sk_test_fake\"}) { nope } }")
        self.assertEqual(st, 400)
        self.assertIn('Cannot query field "nope"', d["errors"][0]["message"])


class TestTibber(FrozenFake):
    def test_quarter_hourly_today_and_published_tomorrow(self):
        pi = price_info(self.fake)
        self.assertEqual(len(pi["today"]), 96)
        self.assertEqual(len(pi["tomorrow"]), 96)
        self.assertEqual(pi["today"][0]["startsAt"], "2026-11-21T00:00:00.000+01:00")
        self.assertEqual(pi["today"][1]["startsAt"], "2026-11-21T00:15:00.000+01:00")
        self.assertEqual(pi["tomorrow"][-1]["startsAt"], "2026-11-22T23:45:00.000+01:00")
        self.assertEqual(list(pi["today"][0]), ["total", "startsAt", "level"])
        cur = pi["current"]
        self.assertEqual(cur["startsAt"], "2026-11-21T18:00:00.000+01:00")
        e = tibber_e(NOW)
        self.assertAlmostEqual(cur["energy"], e, delta=0.00006)
        self.assertAlmostEqual(cur["tax"], round(0.05 + 0.19 * e, 4), delta=0.00006)
        self.assertAlmostEqual(cur["total"], cur["energy"] + cur["tax"], delta=0.00011)
        self.assertEqual(cur["currency"], "EUR")
        first = ts("2026-11-20T23:00:00Z")
        for i, p in enumerate(pi["today"]):
            t = first + 900 * i
            e = tibber_e(t)
            self.assertAlmostEqual(p["total"], round(e + round(0.05 + 0.19 * e, 4), 4), delta=0.00011)

    def test_hourly_resolution_averages_the_quarters(self):
        pi = price_info(self.fake, "HOURLY")
        self.assertEqual(len(pi["today"]), 24)
        st, d = tibber(self.fake, '{ viewer { homes { currentSubscription { priceInfo { current { energy startsAt }'
                                  ' } } } } }')
        cur = d["data"]["viewer"]["homes"][0]["currentSubscription"]["priceInfo"]["current"]
        self.assertEqual(cur["startsAt"], "2026-11-21T18:00:00.000+01:00")
        mean = sum(tibber_e(NOW + 900 * k) for k in range(4)) / 4
        self.assertAlmostEqual(cur["energy"], mean, delta=0.00006)

    def test_form_encoded_body_and_level_thresholds(self):
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "QUARTER_HOURLY"), form=True)
        self.assertEqual(st, 200)
        pi = d["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]
        for p in pi["today"]:
            t = ts(p["startsAt"][:19] + "Z") - 3600
            e = tibber_e(t)
            want = ("VERY_CHEAP" if e < 0.04 else "CHEAP" if e < 0.08 else "NORMAL" if e < 0.12
                    else "EXPENSIVE" if e < 0.16 else "VERY_EXPENSIVE")
            self.assertEqual(p["level"], want)

    def test_startsat_without_milliseconds_variant(self):
        self.fake.config(tibber_startsat_ms=False)
        self.assertEqual(price_info(self.fake)["today"][0]["startsAt"], "2026-11-21T00:00:00+01:00")

    def test_auth_errors(self):
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "HOURLY"), token="wrong")
        self.assertEqual((st, d), (200, {"errors": [{"message": "Context creation failed: invalid token",
                                                     "extensions": {"code": "UNAUTHENTICATED"}}], "data": None}))
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "HOURLY"), token=None)
        self.assertEqual(d["errors"][0]["extensions"]["code"], "UNAUTHENTICATED")
        self.assertIn("no token", d["errors"][0]["message"])

    def test_unknown_home_and_bad_queries(self):
        st, d = tibber(self.fake, '{ viewer { home(id: "nope") { id } } }')
        self.assertEqual(st, 200)
        self.assertEqual(d["data"], {"viewer": {"home": None}})
        self.assertEqual(d["errors"][0]["extensions"]["code"], "NOT_FOUND")
        self.assertEqual(d["errors"][0]["path"], ["viewer", "home"])
        st, d = tibber(self.fake, "invalidquery")
        self.assertEqual(st, 400)
        self.assertEqual(d["errors"][0]["message"], 'Syntax Error: Unexpected Name "invalidquery".')
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "MINUTE"))
        self.assertEqual((st, d["errors"][0]["extensions"]["code"]), (400, "GRAPHQL_VALIDATION_FAILED"))
        st, d = tibber(self.fake, '{ viewer { homes { foo } } }')
        self.assertEqual(st, 400)


class TestWattTime(FrozenFake):
    def test_login_and_forecast(self):
        token = watttime_token(self.fake)
        p = jwt_payload(token)
        self.assertEqual(p["exp"] - p["iat"], 1800)
        d = get_json(self.fake, "/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer",
                     {"Authorization": "Bearer " + token})
        self.assertEqual(len(d["data"]), 288)
        self.assertEqual(d["data"][0]["point_time"], "2026-11-21T17:00:00+00:00")
        self.assertEqual(d["data"][1]["point_time"], "2026-11-21T17:05:00+00:00")
        self.assertEqual(d["meta"]["generated_at"], "2026-11-21T17:00:00+00:00")
        self.assertEqual(d["meta"]["units"], "lbs_co2_per_mwh")
        self.assertEqual(d["meta"]["data_point_period_seconds"], 300)
        g = NOW
        for i, pt in enumerate(d["data"]):
            pp = g + 300 * i
            self.assertAlmostEqual(pt["value"], 800 + 200 * w(pp) + 5 * ((g // 300) % 12), delta=1e-6)
        d = get_json(self.fake, "/v3/forecast?region=PSCO&signal_type=co2_moer&horizon_hours=72",
                     {"Authorization": "Bearer " + token})
        self.assertEqual(len(d["data"]), 864)

    def test_errors(self):
        token = watttime_token(self.fake)
        auth = {"Authorization": "Bearer " + token}
        st, hdrs, data = call(self.fake, "GET", "/login", headers=basic("ratepool", "wrong"))
        self.assertEqual((st, hdrs["content-type"]), (403, "text/html"))
        self.assertIn(b"403 Forbidden", data)
        st, _, data = call(self.fake, "GET", "/v3/forecast?region=ERCOT_EASTTX&signal_type=co2_moer", headers=auth)
        self.assertEqual(st, 403)
        self.assertTrue(json.loads(data)["message"].startswith("Invalid scope."))
        st, _, data = call(self.fake, "GET", "/v3/forecast?region=FOO&signal_type=co2_moer", headers=auth)
        self.assertEqual((st, json.loads(data)),
                         (400, {"error": "Invalid query parameters", "message": "Invalid region: FOO"}))
        st, _, _ = call(self.fake, "GET", "/v3/forecast?region=PSCO&signal_type=co2_moer&horizon_hours=73",
                        headers=auth)
        self.assertEqual(st, 400)
        st, _, _ = call(self.fake, "GET", "/v3/forecast?region=PSCO&signal_type=co2_moer",
                        headers={"Authorization": "Bearer x" + token})
        self.assertEqual(st, 401)
        self.fake.config(revoke_tokens=True)
        st, _, _ = call(self.fake, "GET", "/v3/forecast?region=PSCO&signal_type=co2_moer", headers=auth)
        self.assertEqual(st, 401)
        self.fake.config(token_lifetime_s=0)
        st, _, _ = call(self.fake, "GET", "/v3/forecast?region=PSCO&signal_type=co2_moer",
                        headers={"Authorization": "Bearer " + watttime_token(self.fake)})
        self.assertEqual(st, 401)

    def test_other_endpoints(self):
        auth = {"Authorization": "Bearer " + watttime_token(self.fake)}
        d = get_json(self.fake, "/v3/my-access", auth)
        self.assertEqual(d["signal_types"][0]["signal_type"], "co2_moer")
        d = get_json(self.fake, "/v3/region-from-loc?latitude=39.7456&longitude=-104.9929&signal_type=co2_moer", auth)
        self.assertEqual(d["region"], "PSCO")
        st, _, data = call(self.fake, "GET", "/v3/region-from-loc?latitude=0&longitude=0&signal_type=co2_moer",
                           headers=auth)
        self.assertEqual((st, json.loads(data)["latitude"]), (404, "0"))
        d = get_json(self.fake, "/v3/signal-index?region=PSCO&signal_type=co2_moer", auth)
        self.assertEqual(len(d["data"]), 1)


class TestAemo(FrozenFake):
    def test_5min_report(self):
        st, hdrs, data = call(self.fake, "POST", "/aemo/apps/api/report/5MIN", {"timeScale": ["30MIN"]})
        self.assertEqual(st, 200)
        self.assertEqual(hdrs["cache-control"], "public, max-age=4")
        rows = json.loads(data)["5MIN"]
        self.assertEqual(len(rows), 5 * (288 + 34))
        nsw = [r for r in rows if r["REGIONID"] == "NSW1"]
        self.assertEqual(rows[:len(nsw)], nsw)  # grouped by region
        actual = [r for r in nsw if r["PERIODTYPE"] == "ACTUAL"]
        forecast = [r for r in nsw if r["PERIODTYPE"] == "FORECAST"]
        self.assertEqual(nsw, actual + forecast)
        # now 17:00:00Z, delay 45 s: the last interval ends 16:55Z = 02:55 NEM next day
        self.assertEqual(actual[-1]["SETTLEMENTDATE"], "2026-11-22T02:55:00")
        self.assertEqual(actual[0]["SETTLEMENTDATE"], "2026-11-21T03:00:00")
        self.assertEqual(forecast[0]["SETTLEMENTDATE"], "2026-11-22T03:00:00")
        self.assertEqual(forecast[1]["SETTLEMENTDATE"], "2026-11-22T03:30:00")
        e = ts("2026-11-21T16:55:00Z")
        self.assertAlmostEqual(actual[-1]["RRP"], round(80 + 60 * w(e) + 10 * v(e), 5), delta=6e-6)
        sa = [r for r in rows if r["REGIONID"] == "SA1" and r["PERIODTYPE"] == "ACTUAL"][-1]
        self.assertAlmostEqual(sa["RRP"], round(60 + 120 * w(e) + 10 * v(e), 5), delta=6e-6)
        self.assertEqual(sorted({r["REGIONID"] for r in rows}), ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"])

    def test_5min_without_body_is_500(self):
        st, _, data = call(self.fake, "POST", "/aemo/apps/api/report/5MIN", b"")
        self.assertEqual((st, json.loads(data)), (500, {"message": "An error has occurred."}))

    def test_summary_and_price_overrides(self):
        self.fake.config(aemo_prices=[{"region": "SA1", "from": "2026-11-21T16:50:00Z", "to": "2026-11-21T17:00:00Z",
                                       "rrp": 17500.0}])
        d = get_json(self.fake, "/aemo/apps/api/report/ELEC_NEM_SUMMARY")
        rows = d["ELEC_NEM_SUMMARY"]
        self.assertEqual([r["REGIONID"] for r in rows], ["NSW1", "QLD1", "SA1", "TAS1", "VIC1"])
        self.assertEqual(rows[0]["SETTLEMENTDATE"], "2026-11-22T02:55:00")
        self.assertEqual(rows[2]["PRICE"], 17500.0)
        self.assertIsInstance(json.loads(rows[0]["INTERCONNECTORFLOWS"]), list)
        self.assertEqual(len(d["ELEC_NEM_SUMMARY_PRICES"]), 5)


class TestEnergyCharts(FrozenFake):
    def test_today_and_tomorrow_in_15_minutes(self):
        d = get_json(self.fake, "/price?bzn=DE-LU&start=2026-11-21&end=2026-11-22")
        self.assertEqual(list(d), ["license_info", "unix_seconds", "price", "unit", "deprecated"])
        self.assertEqual(len(d["unix_seconds"]), 192)
        self.assertEqual(d["unix_seconds"][0], ts("2026-11-20T23:00:00Z"))
        self.assertEqual(d["unix_seconds"][1] - d["unix_seconds"][0], 900)
        self.assertEqual(d["unit"], "EUR / MWh")
        for t, p in zip(d["unix_seconds"], d["price"]):
            self.assertAlmostEqual(p, round(80 + 70 * w(t) + 20 * v(t), 2), delta=0.0051)
        nl = get_json(self.fake, "/price?bzn=NL&start=2026-11-21")
        self.assertAlmostEqual(nl["price"][0], round(80 + 70 * w(nl["unix_seconds"][0]) +
                                                      20 * v(nl["unix_seconds"][0]) + 29, 2), delta=0.0051)

    def test_hourly_before_the_cutover_and_dst_days(self):
        d = get_json(self.fake, "/price?bzn=DE-LU&start=2025-09-30&end=2025-10-01")
        steps = [b - a for a, b in zip(d["unix_seconds"], d["unix_seconds"][1:])]
        self.assertEqual(len(d["unix_seconds"]), 24 + 96)
        self.assertEqual(set(steps[:23]), {3600})
        self.assertEqual(set(steps[24:]), {900})
        self.assertEqual(len(get_json(self.fake, "/price?bzn=DE-LU&start=2026-03-29&end=2026-03-29")["price"]), 92)
        self.assertEqual(len(get_json(self.fake, "/price?bzn=DE-LU&start=2026-10-25&end=2026-10-25")["price"]), 100)
        self.assertEqual(len(get_json(self.fake, "/price?bzn=AT&start=2024-10-27&end=2024-10-27")["price"]), 25)

    def test_unix_and_datetime_bounds(self):
        s = ts("2026-11-21T10:00:00Z")
        d = get_json(self.fake, "/price?bzn=DE-LU&start=%d&end=%d" % (s, s + 3600))
        self.assertEqual(d["unix_seconds"], [s + 900 * k for k in range(5)])  # end inclusive
        d = get_json(self.fake, "/price?bzn=DE-LU&start=2026-11-21T10:00Z&end=2026-11-21T11:00%2B01:00")
        self.assertEqual(d["unix_seconds"], [s])

    def test_errors(self):
        st, _, data = call(self.fake, "GET", "/price?bzn=XX")
        self.assertEqual((st, json.loads(data)), (400, {"detail": "bzn not found"}))
        st, _, data = call(self.fake, "GET", "/price?bzn=DE-LU&start=2026-11-23")
        self.assertEqual((st, json.loads(data)), (404, {"detail": "no content available"}))
        st, _, data = call(self.fake, "GET", "/price?bzn=DE-LU&start=soon")
        self.assertEqual((st, json.loads(data)["detail"][0]["loc"]), (422, ["query", "start"]))
        st, hdrs, data = call(self.fake, "GET", "/price?bzn=DE-AT-LU")
        self.assertEqual((st, data), (500, b"Internal Server Error"))

    def test_null_slots_config(self):
        self.fake.config(energycharts_null_slots=["2026-11-21T10:00:00Z"])
        d = get_json(self.fake, "/price?bzn=DE-LU&start=2026-11-21T10:00Z&end=2026-11-21T10:15Z")
        self.assertEqual(d["price"][0], None)
        self.assertIsNotNone(d["price"][1])


class TestFaults(FrozenFake):
    def test_status_fault_with_retry_after_then_normal(self):
        self.fake.fault("octopus_rates", "status", status=503, retry_after=7)
        st, hdrs, data = call(self.fake, "GET", AGILE)
        self.assertEqual((st, hdrs["retry-after"], hdrs["content-type"]), (503, "7", "text/html"))
        self.assertTrue(data.startswith(b"<html>"))
        self.assertEqual(call(self.fake, "GET", AGILE)[0], 200)

    def test_status_fault_default_bodies_and_custom_body(self):
        self.fake.fault("tibber_graphql", "status", status=429)
        st, hdrs, data = call(self.fake, "POST", "/v1-beta/gql", {"query": "{viewer{name}}"},
                              {"Authorization": "Bearer tibber-test-token"})
        self.assertEqual(st, 429)
        self.assertTrue(data.startswith(b"Too many requests. Your IP is now temporarily banned"))
        self.fake.fault("energycharts_price", "status", status=418, body={"detail": "teapot"},
                        retry_after="Sat, 21 Nov 2026 17:01:00 GMT")
        st, hdrs, data = call(self.fake, "GET", "/price?bzn=DE-LU")
        self.assertEqual((st, json.loads(data), hdrs["retry-after"]),
                         (418, {"detail": "teapot"}, "Sat, 21 Nov 2026 17:01:00 GMT"))

    def test_times_and_until_reset(self):
        self.fake.fault("aemo_summary", "status", times=2, status=500)
        codes = [call(self.fake, "GET", "/aemo/apps/api/report/ELEC_NEM_SUMMARY")[0] for _ in range(3)]
        self.assertEqual(codes, [500, 500, 200])
        self.fake.fault("aemo_summary", "status", times=-1, status=502)
        codes = [call(self.fake, "GET", "/aemo/apps/api/report/ELEC_NEM_SUMMARY")[0] for _ in range(4)]
        self.assertEqual(codes, [502] * 4)
        self.fake.reset()
        self.assertEqual(call(self.fake, "GET", "/aemo/apps/api/report/ELEC_NEM_SUMMARY")[0], 200)

    def test_faults_queue_and_match(self):
        self.fake.fault("octopus_rates", "status", status=500, match="E-1R-AGILE-24-10-01-A")
        self.fake.fault("octopus_rates", "status", status=502)
        other = AGILE.replace("-C/", "-A/")
        self.assertEqual(call(self.fake, "GET", AGILE)[0], 502)  # first pending fault that matches
        self.assertEqual(call(self.fake, "GET", AGILE)[0], 200)
        self.assertEqual(call(self.fake, "GET", other)[0], 500)
        self.assertEqual(self.fake.faults(), {})

    def test_slow(self):
        self.fake.fault("energycharts_price", "slow", delay_s=0.3)
        t0 = time.monotonic()
        st, _, data = call(self.fake, "GET", "/price?bzn=DE-LU")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertEqual(st, 200)
        self.assertIn("price", json.loads(data))

    def test_slow_longer_than_the_client_waits(self):
        self.fake.fault("energycharts_price", "slow", delay_s=0.6)
        with self.assertRaises(socket.timeout):
            call(self.fake, "GET", "/price?bzn=DE-LU", timeout=0.1)
        self.assertEqual(call(self.fake, "GET", "/price?bzn=DE-LU")[0], 200)  # not blocked meanwhile
        time.sleep(0.7)  # the slow answer now hits a closed socket
        self.assertEqual(call(self.fake, "GET", "/price?bzn=DE-LU")[0], 200)
        self.assertNotIn("Traceback", self.fake.stderr())

    def test_truncate(self):
        self.fake.fault("octopus_rates", "truncate")
        with self.assertRaises(http.client.IncompleteRead):
            call(self.fake, "GET", AGILE)

    def test_close(self):
        self.fake.fault("watttime_login", "close")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            call(self.fake, "GET", "/login", headers=basic("ratepool", "fake-password"))

    def test_invalid_json_and_html(self):
        self.fake.fault("octopus_rates", "invalid_json")
        st, _, data = call(self.fake, "GET", AGILE)
        self.assertEqual(st, 200)
        with self.assertRaises(ValueError):
            json.loads(data)
        self.fake.fault("octopus_rates", "html")
        st, hdrs, data = call(self.fake, "GET", AGILE)
        self.assertEqual((st, hdrs["content-type"]), (403, "text/html"))
        self.assertIn(b"CloudFront", data)

    def test_empty(self):
        for ep, path, check in (
                ("octopus_rates", AGILE, lambda d: d["count"] == 0 and d["results"] == []),
                ("energycharts_price", "/price?bzn=DE-LU", lambda d: d["unix_seconds"] == [] and d["price"] == []),
                ("aemo_summary", "/aemo/apps/api/report/ELEC_NEM_SUMMARY", lambda d: d["ELEC_NEM_SUMMARY"] == [])):
            self.fake.fault(ep, "empty")
            st, _, data = call(self.fake, "GET", path)
            self.assertEqual(st, 200)
            self.assertTrue(check(json.loads(data)), ep)
        self.fake.fault("tibber_graphql", "empty")
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "QUARTER_HOURLY"))
        self.assertEqual(d["data"]["viewer"]["home"]["currentSubscription"]["priceInfo"]["today"], [])

    def test_garbage_is_json_that_lies(self):
        self.fake.fault("octopus_rates", "garbage")
        d = json.loads(call(self.fake, "GET", AGILE)[2])
        self.assertIn("NaN", [r.get("value_inc_vat") for r in d["results"]])
        self.fake.fault("energycharts_price", "garbage")
        d = json.loads(call(self.fake, "GET", "/price?bzn=DE-LU")[2])
        self.assertNotEqual(len(d["unix_seconds"]), len(d["price"]))

    def test_graphql_error(self):
        self.fake.fault("kraken_graphql", "graphql_error", code="KT-CT-1143")
        st, d = kraken(self.fake, AUTH_Q, token="whatever")
        self.assertEqual((st, d["data"]), (200, {"account": None}))
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1143")
        self.assertEqual(d["errors"][0]["path"], ["account"])
        self.fake.fault("tibber_graphql", "graphql_error", code="UNAUTHENTICATED")
        st, d = tibber(self.fake, TIBBER_Q % (harness.TIBBER_HOME, "HOURLY"))
        self.assertEqual((st, d["data"], d["errors"][0]["extensions"]["code"]), (200, None, "UNAUTHENTICATED"))

    def test_rate_limit(self):
        self.fake.fault("kraken_graphql", "rate_limit")
        st, d = kraken(self.fake, 'mutation { obtainKrakenToken(input: {APIKey: "sk_test_fake"}) { token } }')
        self.assertEqual((st, d["errors"][0]["extensions"]["errorCode"]), (200, "KT-CT-1199"))
        self.fake.fault("watttime_forecast", "rate_limit", retry_after=3)
        st, hdrs, data = call(self.fake, "GET", "/v3/forecast?region=PSCO&signal_type=co2_moer")
        self.assertEqual((st, hdrs["retry-after"], json.loads(data)), (429, "3", {"error": "Too many requests"}))

    def test_bad_fault_requests_are_refused(self):
        for body in ({"endpoint": "nope", "kind": "close"}, {"endpoint": "octopus_rates", "kind": "nope"},
                     {"endpoint": "octopus_rates", "kind": "status"}, {"endpoint": "octopus_rates", "kind": "close",
                                                                       "times": 0}):
            st, _, _ = self.fake.request("POST", "/_fake/fault", body)
            self.assertEqual(st, 400, body)
        st, _, _ = self.fake.request("POST", "/_fake/config", {"nope": 1})
        self.assertEqual(st, 400)


class TestCountersAndServer(FrozenFake):
    def test_calls_are_counted_per_endpoint_and_reset(self):
        call(self.fake, "GET", AGILE)
        call(self.fake, "GET", AGILE)
        call(self.fake, "GET", "/price?bzn=DE-LU")
        call(self.fake, "GET", "/nowhere")
        self.fake.fault("energycharts_price", "status", status=500)
        call(self.fake, "GET", "/price?bzn=DE-LU")
        self.fake.calls()
        self.assertEqual(self.fake.calls(), {"octopus_rates": 2, "energycharts_price": 2, "unknown": 1})
        self.fake.reset()
        self.assertEqual(self.fake.calls(), {})

    def test_counting_is_exact_under_concurrency(self):
        errors = []

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=10)
            try:
                for _ in range(20):
                    conn.request("GET", "/price?bzn=NL")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.fake.call_count("energycharts_price"), 400)

    def test_many_simultaneous_connections(self):
        socks = []
        try:
            for _ in range(200):
                socks.append(socket.create_connection(("127.0.0.1", self.fake.port), timeout=10))
            req = b"GET /price?bzn=DE-LU&start=2026-11-21T10:00Z&end=2026-11-21T10:00Z HTTP/1.1\r\nHost: x\r\n\r\n"
            for s in socks:
                s.sendall(req)
            for s in socks:
                self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200"))
        finally:
            for s in socks:
                s.close()

    def test_keep_alive_reuses_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
        try:
            conn.request("GET", AGILE + "?page_size=1")
            conn.getresponse().read()
            sock = conn.sock
            for _ in range(5):
                conn.request("GET", AGILE + "?page_size=1")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertIs(conn.sock, sock)
        finally:
            conn.close()

    def test_requests_list_access_log_and_date_header(self):
        call(self.fake, "GET", AGILE + "?page_size=1", headers={"User-Agent": "ratepool-test"})
        kraken_token(self.fake)
        reqs = self.fake.requests()
        self.assertEqual(reqs[0]["path"], AGILE + "?page_size=1")
        self.assertEqual(reqs[0]["user_agent"], "ratepool-test")
        self.assertEqual(reqs[0]["status"], 200)
        self.assertEqual(self.fake.requests("kraken_graphql")[0]["method"], "POST")
        log = self.fake.access_log()
        self.assertIn('"GET %s?page_size=1 HTTP/1.1" 200' % AGILE, log)
        self.assertIn("kraken_graphql", log)
        hdrs = call(self.fake, "GET", AGILE)[1]
        self.assertEqual(hdrs["date"], "Sat, 21 Nov 2026 17:00:00 GMT")

    def test_now_and_clock_spec(self):
        self.assertAlmostEqual(self.fake.now(), NOW, delta=1)
        spec = self.fake.clock_spec()
        self.assertTrue(spec.startswith("2026-11-21T17:00:00."), spec)
        self.assertTrue(spec.endswith(",1e-06"), spec)


class TestPublication(unittest.TestCase):
    """An accelerated clock (60x) crossing 12:00 UTC = 13:00 CET: tomorrow
    appears for Tibber and Energy-Charts at their default time and for
    Octopus at a configured "12:00"; a 5-minute boundary is crossed too."""

    def test_tomorrow_appears_at_publish_time(self):
        fake = harness.FakeUpstream(self, clock="2026-11-21T11:57:30Z,60").start()
        fake.config(publish_at={"octopus": "12:00"}, kraken_token_lifetime_s=60)
        token = kraken_token(fake)["token"]
        wt = watttime_token(fake)
        tomorrow = rates_url(period_from="2026-11-22T00:00:00Z", period_to="2026-11-23T00:00:00Z")
        fc = "/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer"
        self.assertEqual(get_json(fake, tomorrow)["count"], 0)
        self.assertEqual(price_info(fake)["tomorrow"], [])
        self.assertEqual(get_json(fake, "/price?bzn=DE-LU&start=2026-11-21&end=2026-11-22")["unix_seconds"][-1],
                         ts("2026-11-21T22:45:00Z"))
        before = get_json(fake, fc, {"Authorization": "Bearer " + wt})
        self.assertEqual(before["meta"]["generated_at"], "2026-11-21T11:55:00+00:00")
        # The checks above assumed it was still before 12:00; make sure.
        self.assertLess(fake.now(), ts("2026-11-21T12:00:00Z"), "machine too slow for this test")
        harness.wait_until(lambda: fake.now() >= ts("2026-11-21T12:00:46Z"), timeout=10, interval=0.02)
        self.assertEqual(get_json(fake, tomorrow)["count"], 48)
        self.assertEqual(len(price_info(fake)["tomorrow"]), 96)
        self.assertEqual(get_json(fake, "/price?bzn=DE-LU&start=2026-11-21&end=2026-11-22")["unix_seconds"][-1],
                         ts("2026-11-22T22:45:00Z"))
        after = get_json(fake, fc, {"Authorization": "Bearer " + wt})
        self.assertEqual(after["meta"]["generated_at"], "2026-11-21T12:00:00+00:00")
        same = [p for p in after["data"] if p["point_time"] == "2026-11-21T12:05:00+00:00"][0]
        old = [p for p in before["data"] if p["point_time"] == "2026-11-21T12:05:00+00:00"][0]
        self.assertAlmostEqual(same["value"] - old["value"], 5 * ((ts("2026-11-21T12:00:00Z") // 300) % 12) -
                               5 * ((ts("2026-11-21T11:55:00Z") // 300) % 12), delta=1e-6)
        aemo = get_json(fake, "/aemo/apps/api/report/ELEC_NEM_SUMMARY")["ELEC_NEM_SUMMARY"][0]
        self.assertEqual(aemo["SETTLEMENTDATE"], "2026-11-21T22:00:00")  # 12:00Z ended, 45 s later
        st, d = kraken(fake, AUTH_Q, token=token)  # 60 s lifetime has passed
        self.assertEqual(d["errors"][0]["extensions"]["errorCode"], "KT-CT-1143")

    def test_publish_at_instant_and_never(self):
        fake = harness.FakeUpstream(self, clock="2026-11-21T14:00:00Z,0.000001").start()
        tomorrow = rates_url(period_from="2026-11-22T00:00:00Z", period_to="2026-11-23T00:00:00Z")
        self.assertEqual(get_json(fake, tomorrow)["count"], 0)  # before 16:00 UK
        fake.config(publish_at={"octopus": "2026-11-21T13:30:00Z"})
        self.assertEqual(get_json(fake, tomorrow)["count"], 48)
        fake.config(publish_at={"octopus": "2026-11-20T13:30:00Z"})  # another day: default time applies
        self.assertEqual(get_json(fake, tomorrow)["count"], 0)
        self.assertEqual(len(price_info(fake)["tomorrow"]), 96)  # 15:00 CET
        fake.config(publish_at={"tibber": "never", "energycharts": None})
        self.assertEqual(price_info(fake)["tomorrow"], [])
        st, _, _ = call(fake, "GET", "/price?bzn=DE-LU&start=2026-11-22")
        self.assertEqual(st, 404)
        fake.config(octopus_day_end_hour=23, publish_at={"octopus": "16:00"})
        d = get_json(fake, rates_url(period_from="2026-11-21T00:00:00Z"))
        self.assertEqual(d["results"][0]["valid_to"], "2026-11-21T23:00:00Z")


class TestOtherDays(unittest.TestCase):
    def test_tibber_before_the_15_minute_cutover_repeats_hours(self):
        fake = harness.FakeUpstream(self, clock="2025-09-20T10:00:00Z,0.000001").start()
        pi = price_info(fake)
        self.assertEqual(len(pi["today"]), 96)
        self.assertEqual(pi["today"][0]["startsAt"], "2025-09-20T00:00:00.000+02:00")
        for h in range(24):
            self.assertEqual(len({p["total"] for p in pi["today"][4 * h:4 * h + 4]}), 1)
        self.assertEqual(pi["tomorrow"], [])  # 12:00 CEST, before 13:00
        self.assertEqual(len(price_info(fake, "HOURLY")["today"]), 24)

    def test_tibber_on_a_dst_day(self):
        fake = harness.FakeUpstream(self, clock="2026-10-25T10:00:00Z,0.000001").start()
        self.assertEqual(len(price_info(fake)["today"]), 100)
        self.assertEqual(len(price_info(fake, "HOURLY")["today"]), 25)


class TestProcess(unittest.TestCase):
    def test_port_file_stdout_line_sigterm_and_canned_data(self):
        d = harness.make_tempdir(self)
        with open(os.path.join(d, "energycharts_price.json"), "w") as f:
            f.write('{"canned": true}')
        port_file = os.path.join(d, "port")
        p = subprocess.Popen([sys.executable, str(harness.FAKE_SCRIPT), "--port-file", port_file, "--data", d],
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        line = p.stdout.readline().strip()
        port = int(harness._read(port_file))
        self.assertEqual(line, "listening 127.0.0.1:%d" % port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/price?bzn=DE-LU")
        self.assertEqual(c.getresponse().read(), b'{"canned": true}')
        c.close()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=5), 0)
        p.stdout.close()

    def test_eu_rule_agrees_with_zoneinfo(self):
        spec = importlib.util.spec_from_file_location("fake_upstream_mod", harness.FAKE_SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if mod._ZONEINFO is None:
            self.skipTest("no zoneinfo database")
        for year in range(2020, 2031):
            for month, day in ((3, 20), (10, 20)):
                base = int(datetime(year, month, day, tzinfo=timezone.utc).timestamp())
                for t in range(base, base + 14 * 86400, 1800):
                    for zone in ("Europe/London", "Europe/Berlin"):
                        self.assertEqual(mod.offset(zone, t), mod.offset_eu_rule(zone, t), (zone, t))


class TestHarness(unittest.TestCase):
    def test_mosquitto_pub_sub_and_persistent_restart(self):
        broker = harness.Mosquitto(self, persistence=True).start()
        self.assertTrue(harness.port_open(broker.port))
        watcher = harness.MqttWatcher(self, broker.port, "t/#").start()
        harness.mqtt_pub(broker.port, "t/retained", "hello\nworld", retain=True, qos=1)
        harness.mqtt_pub(broker.port, "t/plain", '{"a": 1}')
        self.assertEqual(watcher.wait_for(count=2, timeout=5),
                         [("t/retained", "hello\nworld"), ("t/plain", '{"a": 1}')])
        broker.restart(kill=True)
        self.assertEqual(harness.mqtt_retained(broker.port, "t/retained"), "hello\nworld")
        self.assertIsNone(harness.mqtt_retained(broker.port, "t/none", timeout=1))

    def test_ratepool_environment_points_at_fake_and_broker(self):
        fake = harness.FakeUpstream(self, clock="2026-11-21T15:00:00Z,600").start()
        broker = harness.Mosquitto(self)
        broker.port = 1
        rp = harness.Ratepool(self, fake=fake, broker=broker, env={"RATEPOOL_LOG_LEVEL": None, "X": 1})
        env = rp.environment()
        self.assertEqual(env["RATEPOOL_OCTOPUS_URL"], fake.url)
        self.assertEqual(env["RATEPOOL_ENERGYCHARTS_URL"], fake.url)
        self.assertEqual(env["RATEPOOL_MQTT_URL"], "tcp://127.0.0.1:1")
        self.assertTrue(env["RATEPOOL_STORE"].startswith(rp.dir))
        self.assertTrue(env["RATEPOOL_TEST_CLOCK"].startswith("2026-11-21T15:"))
        self.assertTrue(env["RATEPOOL_TEST_CLOCK"].endswith(",600.0"))
        self.assertNotIn("RATEPOOL_LOG_LEVEL", env)
        self.assertEqual(env["X"], "1")


if __name__ == "__main__":
    unittest.main()
