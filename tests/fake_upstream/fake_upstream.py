#!/usr/bin/env python3
"""fake_upstream.py - the six upstream APIs ratepool talks to, on one
loopback port, under their real paths, with deterministic prices, a
simulated clock and injectable faults. Python 3 standard library only.

README.md beside this file is the contract (endpoints, price functions,
control API); keep the two in step.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

# ---------------------------------------------------------------------------
# Clock: RATEPOOL_TEST_CLOCK="<RFC 3339 start>[,<speed>]", as service/rtime.c.

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|[+-]\d{2}:?\d{2})$")


def parse_rfc3339(text):
    """Unix seconds (float) of an RFC 3339 date-time with a zone, or None."""
    m = _RFC3339_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        t = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    if m.group(7):
        t += float(m.group(7))
    z = m.group(8)
    if z not in ("Z", "z"):
        sign = 1 if z[0] == "+" else -1
        digits = z[1:].replace(":", "")
        t -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return t


class Clock:
    """Real time, or simulated time starting at the spec's instant when the
    process starts and running `speed` times faster."""

    def __init__(self, spec):
        self.sim_start = None
        self.speed = 1.0
        self.real_start = time.monotonic()
        if not spec:
            return
        start, _, speed = spec.partition(",")
        t = parse_rfc3339(start)
        if t is None:
            return
        try:
            sp = float(speed) if speed else 1.0
        except ValueError:
            sp = 1.0
        if not (sp > 0 and sp <= 1e6):
            sp = 1.0
        self.sim_start = t
        self.speed = sp

    def now(self):
        if self.sim_start is None:
            return time.time()
        return self.sim_start + (time.monotonic() - self.real_start) * self.speed

    def simulated(self):
        return self.sim_start is not None


CLOCK = Clock(os.environ.get("RATEPOOL_TEST_CLOCK"))

# ---------------------------------------------------------------------------
# Time zones. zoneinfo when the system has the database, else the EU rule
# (summer time from the last Sunday of March to the last Sunday of October,
# switching at 01:00 UTC), which is what every zone used here follows.

ZONE_BASE = {"Europe/London": 0, "Europe/Berlin": 3600, "NEM": 36000, "UTC": 0}

try:
    from zoneinfo import ZoneInfo

    if not os.path.isdir("/usr/share/zoneinfo"):
        raise ImportError("no zoneinfo database")
    _ZONEINFO = {n: ZoneInfo(n) for n in ("Europe/London", "Europe/Berlin")}
except Exception:  # pragma: no cover - depends on the system
    _ZONEINFO = None


def _last_sunday(y, m):
    d = date(y, m + 1, 1) - timedelta(days=1) if m < 12 else date(y, 12, 31)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def eu_summer_time(t):
    """True when instant t is inside EU summer time."""
    y = datetime.fromtimestamp(t, timezone.utc).year
    start = datetime.combine(_last_sunday(y, 3), datetime.min.time(), timezone.utc)
    end = datetime.combine(_last_sunday(y, 10), datetime.min.time(), timezone.utc)
    start = start.timestamp() + 3600
    end = end.timestamp() + 3600
    return start <= t < end


def offset_eu_rule(zone, t):
    base = ZONE_BASE[zone]
    if zone in ("NEM", "UTC"):
        return base
    return base + (3600 if eu_summer_time(t) else 0)


def offset(zone, t):
    """UTC offset in seconds of `zone` at instant t."""
    if _ZONEINFO is not None and zone in _ZONEINFO:
        return int(datetime.fromtimestamp(t, _ZONEINFO[zone]).utcoffset().total_seconds())
    return offset_eu_rule(zone, t)


EPOCH_DATE = date(1970, 1, 1)


def local_date(zone, t):
    return EPOCH_DATE + timedelta(days=int((t + offset(zone, t)) // 86400))


def local_to_utc(zone, d, h=0, m=0):
    """UTC instant of wall time d h:m in zone. For a wall time that a DST
    change skips or repeats, one of the candidates (publication times and
    midnights never fall there)."""
    naive = (d - EPOCH_DATE).days * 86400 + h * 3600 + m * 60
    t = naive - offset(zone, naive - ZONE_BASE[zone])
    off = offset(zone, t)
    if naive - off != t and offset(zone, naive - off) == off:
        t = naive - off
    return t


def local_midnight(zone, d):
    return local_to_utc(zone, d)


def iso_z(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def iso_offset(t, off, ms=False, colon=True):
    s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t) + off))
    if ms:
        s += ".000"
    sign = "+" if off >= 0 else "-"
    a = abs(off)
    return s + "%s%02d:%02d" % (sign, a // 3600, (a % 3600) // 60)


def iso_local(zone, t, ms=False):
    return iso_offset(t, offset(zone, t), ms)


def iso_ms_z(t):
    """RFC 3339 UTC with milliseconds (for /_fake/now)."""
    whole = math.floor(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % int((t - whole) * 1000)


# ---------------------------------------------------------------------------
# Deterministic prices (README.md "Price functions").

DAY = 86400.0
WEEK = 604800.0
DATA_START = 1577836800  # 2020-01-01T00:00:00Z: no data before


def wave(t):
    return math.sin(2 * math.pi * t / DAY)


def week_wave(t):
    return math.sin(2 * math.pi * t / WEEK)


def agile_inc(t):
    """Octopus Agile p/kWh inc VAT for the half hour starting at t."""
    return round(15 + 12 * wave(t) + 4 * week_wave(t), 2)


def exc_vat(inc):
    return round(inc / 1.05, 6)


TIBBER_CUTOVER = 1759269600  # 2025-09-30T22:00:00Z = 2025-10-01 00:00 Europe/Berlin


def tibber_energy_raw(t):
    return round(0.10 + 0.08 * wave(t) + 0.02 * week_wave(t), 4)


def tibber_energy(t, hourly):
    """Tibber energy EUR/kWh of the slot starting at t (15 min, or an hour
    when `hourly`)."""
    if t < TIBBER_CUTOVER:
        return tibber_energy_raw(t - t % 3600)
    if hourly:
        return round(sum(tibber_energy_raw(t + k * 900) for k in range(4)) / 4, 4)
    return tibber_energy_raw(t)


def tibber_level(energy):
    if energy < 0.04:
        return "VERY_CHEAP"
    if energy < 0.08:
        return "CHEAP"
    if energy < 0.12:
        return "NORMAL"
    if energy < 0.16:
        return "EXPENSIVE"
    return "VERY_EXPENSIVE"


EC_ZONES = [
    "AT", "BE", "BG", "CH", "CZ", "DE-LU", "DE-AT-LU", "DK1", "DK2", "EE", "ES", "FI", "FR", "GR",
    "HR", "HU", "IT-Calabria", "IT-Centre-North", "IT-Centre-South", "IT-North", "IT-SACOAC",
    "IT-SACODC", "IT-Sardinia", "IT-Sicily", "IT-South", "LT", "LV", "ME", "NL", "NO1", "NO2",
    "NO2NSL", "NO3", "NO4", "NO5", "PL", "PT", "RO", "RS", "SE1", "SE2", "SE3", "SE4", "SI", "SK",
]
EC_CUTOVER = TIBBER_CUTOVER  # 15-minute day-ahead products from delivery day 2025-10-01


def ec_zone_offset(bzn):
    return 0 if bzn == "DE-LU" else EC_ZONES.index(bzn) + 1


def ec_price(bzn, t):
    """Energy-Charts EUR/MWh of the slot starting at t."""
    return round(80 + 70 * wave(t) + 20 * week_wave(t) + ec_zone_offset(bzn), 2)


AEMO_REGIONS = {"NSW1": (80, 60), "QLD1": (70, 70), "SA1": (60, 120), "TAS1": (90, 20), "VIC1": (50, 90)}


def aemo_rrp_raw(region, end):
    b, a = AEMO_REGIONS[region]
    return b + a * wave(end) + 10 * week_wave(end)


def watttime_value(signal_type, p, g):
    v = 800 + 200 * wave(p) + 5 * ((int(g) // 300) % 12)
    if signal_type == "co2_aoer":
        return v * 0.8
    if signal_type == "health_damage":
        return v / 20
    return v


# ---------------------------------------------------------------------------
# Shared state: counters, faults, config, issued tokens, recent requests.

ENDPOINTS = [
    "octopus_rates", "octopus_standing_charges", "octopus_product", "octopus_account",
    "octopus_other", "kraken_graphql", "tibber_graphql", "watttime_login", "watttime_forecast",
    "watttime_other", "aemo_5min", "aemo_summary", "energycharts_price", "unknown",
]
FAULT_KINDS = ["status", "slow", "truncate", "invalid_json", "html", "empty", "garbage",
               "graphql_error", "close", "rate_limit"]

DEFAULT_CONFIG = {
    "kraken_token_lifetime_s": 3600,
    "watttime_token_lifetime_s": 1800,
    "refresh_token_lifetime_s": 7 * 86400,
    "page_size": 100,
    "publish_at": {"octopus": "16:00", "tibber": "13:00", "energycharts": "13:00"},
    "octopus_day_end_hour": 0,
    "aemo_delay_s": 45,
    "tibber_startsat_ms": True,
    "kraken_expired_code": "KT-CT-1143",
    "watttime_expired_status": 401,
    "energycharts_null_slots": [],
    "aemo_prices": [],
    "account_agreements": None,
}
PUBLISH_ZONE = {"octopus": "Europe/London", "tibber": "Europe/Berlin", "energycharts": "Europe/Berlin"}


class FakeError(Exception):
    """A bad control-API request: 400 with this message."""


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.secret = os.urandom(32)
        self.serial = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.counts = {}
            self.faults = collections.OrderedDict()
            self.config = json.loads(json.dumps(DEFAULT_CONFIG))
            self.revoked_upto = 0
            self.requests = collections.deque(maxlen=1000)

    def count(self, endpoint):
        with self.lock:
            self.counts[endpoint] = self.counts.get(endpoint, 0) + 1

    def calls(self):
        with self.lock:
            return dict(self.counts)

    def cfg(self, key):
        with self.lock:
            return self.config[key]

    def set_config(self, patch):
        if not isinstance(patch, dict):
            raise FakeError("config body must be a JSON object")
        with self.lock:
            for k, v in patch.items():
                if k == "token_lifetime_s":
                    self.config["kraken_token_lifetime_s"] = int(v)
                    self.config["watttime_token_lifetime_s"] = int(v)
                elif k == "revoke_tokens":
                    if v:
                        self.revoked_upto = self.serial
                elif k == "publish_at":
                    if not isinstance(v, dict):
                        raise FakeError("publish_at must be an object")
                    for prov, when in v.items():
                        if prov not in PUBLISH_ZONE:
                            raise FakeError("publish_at: unknown provider %r" % prov)
                        _check_publish_spec(when)
                        self.config["publish_at"][prov] = when
                elif k in DEFAULT_CONFIG:
                    self.config[k] = v
                else:
                    raise FakeError("unknown config key %r" % k)
            return json.loads(json.dumps(self.config))

    def add_fault(self, f):
        if not isinstance(f, dict):
            raise FakeError("fault body must be a JSON object")
        ep = f.get("endpoint")
        if ep not in ENDPOINTS:
            raise FakeError("unknown endpoint %r" % ep)
        if f.get("kind") not in FAULT_KINDS:
            raise FakeError("unknown fault kind %r" % f.get("kind"))
        times = f.get("times", 1)
        if not isinstance(times, int) or times == 0 or times < -1:
            raise FakeError("times must be a positive integer or -1")
        if f["kind"] == "status" and not isinstance(f.get("status"), int):
            raise FakeError("status fault needs an integer status")
        if f["kind"] == "slow" and not isinstance(f.get("delay_s"), (int, float)):
            raise FakeError("slow fault needs delay_s")
        f = dict(f, times=times)
        with self.lock:
            self.faults.setdefault(ep, []).append(f)

    def take_fault(self, endpoint, text):
        """The first queued fault of endpoint whose `match` is in text (one
        use of it), or None."""
        with self.lock:
            queue = self.faults.get(endpoint)
            if not queue:
                return None
            for i, f in enumerate(queue):
                if f.get("match") and f["match"] not in text:
                    continue
                if f["times"] > 0:
                    f["times"] -= 1
                    if f["times"] == 0:
                        del queue[i]
                return dict(f)
            return None

    def pending_faults(self):
        with self.lock:
            return {k: [dict(f) for f in v] for k, v in self.faults.items() if v}

    def next_serial(self):
        with self.lock:
            self.serial += 1
            return self.serial

    def revoked(self, serial):
        with self.lock:
            return serial <= self.revoked_upto

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def recent(self, endpoint=None):
        with self.lock:
            return [r for r in self.requests if endpoint is None or r["endpoint"] == endpoint]


STATE = State()


def _check_publish_spec(when):
    if when is None or when == "never":
        return
    if isinstance(when, str) and re.match(r"^\d{1,2}:\d{2}$", when):
        h, m = (int(x) for x in when.split(":"))
        if h < 24 and m < 60:
            return
    if isinstance(when, str) and parse_rfc3339(when) is not None:
        return
    raise FakeError("publish_at value must be \"HH:MM\", an RFC 3339 instant, or null")


# ---------------------------------------------------------------------------
# Publication: what exists at `now`.

def _hhmm(spec):
    h, m = (int(x) for x in spec.split(":"))
    return h, m


def publish_instant(provider, d):
    """When day d+1's data of `provider` appears (d is a local date), or
    None for never."""
    zone = PUBLISH_ZONE[provider]
    spec = STATE.cfg("publish_at")[provider]
    if spec is None or spec == "never":
        return None
    if ":" in spec and len(spec) <= 5:
        return local_to_utc(zone, d, *_hhmm(spec))
    x = parse_rfc3339(spec)
    if local_date(zone, x) == d:
        return x
    return local_to_utc(zone, d, *_hhmm(DEFAULT_CONFIG["publish_at"][provider]))


def day_end(provider, d):
    """End of local day d as the provider's data counts it."""
    zone = PUBLISH_ZONE[provider]
    end = local_midnight(zone, d + timedelta(days=1))
    if provider == "octopus":
        h = int(STATE.cfg("octopus_day_end_hour") or 0)
        if h:
            end -= (24 - h) * 3600
    return end


def available_end(provider, now):
    """End (exclusive) of the data a daily provider has at `now`: the end of
    today, or of tomorrow once today's publication time has passed."""
    d = local_date(PUBLISH_ZONE[provider], now)
    pub = publish_instant(provider, d)
    if pub is not None and now >= pub:
        return day_end(provider, d + timedelta(days=1))
    return day_end(provider, d)


# ---------------------------------------------------------------------------
# Tokens: JWTs signed with HMAC-SHA256 by a per-process secret; `jti` is an
# issue serial so that revoke_tokens can invalidate everything issued so far.

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def make_jwt(payload, alg="RS256"):
    head = b64url(json.dumps({"typ": "JWT", "alg": alg}, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(STATE.secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def check_jwt(token):
    """(payload, problem): problem is None, "invalid", "revoked" or "expired"."""
    parts = token.split(".") if token else []
    if len(parts) != 3:
        return None, "invalid"
    want = hmac.new(STATE.secret, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(b64url_decode(parts[2]), want):
            return None, "invalid"
        payload = json.loads(b64url_decode(parts[1]))
    except Exception:
        return None, "invalid"
    if STATE.revoked(payload.get("jti", 0)):
        return payload, "revoked"
    if CLOCK.now() >= payload.get("exp", 0):
        return payload, "expired"
    return payload, None


def make_refresh_token(exp):
    serial = STATE.next_serial()
    body = "%d.%d" % (serial, int(exp))
    sig = hmac.new(STATE.secret, ("refresh:" + body).encode(), hashlib.sha256).hexdigest()[:32]
    return "fake_refresh_%s.%s" % (body, sig)


def check_refresh_token(tok):
    m = re.match(r"^fake_refresh_(\d+)\.(\d+)\.([0-9a-f]{32})$", tok or "")
    if not m:
        return "invalid"
    body = m.group(1) + "." + m.group(2)
    sig = hmac.new(STATE.secret, ("refresh:" + body).encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(sig, m.group(3)):
        return "invalid"
    if STATE.revoked(int(m.group(1))):
        return "revoked"
    if CLOCK.now() >= int(m.group(2)):
        return "expired"
    return None


# ---------------------------------------------------------------------------
# A small GraphQL engine: enough of the language for the queries real
# clients send (operations, variables, arguments, aliases, inline fragments,
# named fragments), executed over Python dicts whose values may be
# resolver functions (args, ctx) -> value.

class GQLSyntaxError(Exception):
    def __init__(self, message, line, col):
        super().__init__(message)
        self.line, self.col = line, col


class GQLValidationError(Exception):
    def __init__(self, message, line=None, col=None):
        super().__init__(message)
        self.line, self.col = line, col


class GQLFieldError(Exception):
    """Raised by a resolver: the field becomes null and an error is added."""

    def __init__(self, message, extensions=None, extra=None):
        super().__init__(message)
        self.extensions = extensions
        self.extra = extra or {}


class Enum(str):
    pass


_GQL_TOKEN = re.compile(r'''
    (?P<ws>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<block>"""(?:\\"""|[^"]|"(?!""))*""")
  | (?P<str>"(?:\\.|[^"\\\n])*")
''', re.X)


def _gql_tokens(src):
    line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", src)]

    def where(pos):
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, pos - line_starts[lo] + 1

    out = []
    pos = 0
    while pos < len(src):
        m = _GQL_TOKEN.match(src, pos)
        if not m:
            line, col = where(pos)
            raise GQLSyntaxError("Syntax Error: Unexpected character: %r." % src[pos], line, col)
        kind = m.lastgroup
        if kind != "ws":
            line, col = where(pos)
            out.append((kind, m.group(kind), line, col))
        pos = m.end()
    line, col = where(len(src))
    out.append(("eof", "<EOF>", line, col))
    return out


class _GQLParser:
    def __init__(self, src):
        self.toks = _gql_tokens(src)
        self.i = 0

    def peek(self, value=None, kind=None):
        k, v, _, _ = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind) and k != "eof" or (
            kind == "eof" and k == "eof")

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def unexpected(self):
        k, v, line, col = self.toks[self.i]
        what = "<EOF>" if k == "eof" else ('Name "%s"' % v if k == "name" else '"%s"' % v)
        raise GQLSyntaxError("Syntax Error: Unexpected %s." % what, line, col)

    def expect(self, value=None, kind=None):
        if not self.peek(value, kind):
            self.unexpected()
        return self.next()

    def document(self):
        ops, frags = [], {}
        while not self.peek(kind="eof"):
            if self.peek("{"):
                ops.append({"type": "query", "name": None, "vars": {}, "sel": self.selection_set()})
            elif self.peek("query") or self.peek("mutation") or self.peek("subscription"):
                op_type = self.next()[1]
                name = self.next()[1] if self.peek(kind="name") else None
                var_defs = self.variable_defs() if self.peek("(") else {}
                self.directives()
                ops.append({"type": op_type, "name": name, "vars": var_defs, "sel": self.selection_set()})
            elif self.peek("fragment"):
                self.next()
                name = self.expect(kind="name")[1]
                self.expect("on")
                on = self.expect(kind="name")[1]
                self.directives()
                frags[name] = {"on": on, "sel": self.selection_set()}
            else:
                self.unexpected()
        if not ops:
            raise GQLSyntaxError("Syntax Error: Unexpected <EOF>.", 1, 1)
        return ops, frags

    def variable_defs(self):
        defs = {}
        self.expect("(")
        while not self.peek(")"):
            self.expect("$")
            name = self.expect(kind="name")[1]
            self.expect(":")
            self.type_ref()
            defs[name] = self.value(const=True) if self.peek("=") and self.next() else None
            self.directives()
        self.expect(")")
        return defs

    def type_ref(self):
        if self.peek("["):
            self.next()
            self.type_ref()
            self.expect("]")
        else:
            self.expect(kind="name")
        if self.peek("!"):
            self.next()

    def directives(self):
        while self.peek("@"):
            self.next()
            self.expect(kind="name")
            if self.peek("("):
                self.arguments()

    def selection_set(self):
        self.expect("{")
        sel = []
        while not self.peek("}"):
            if self.peek(kind="eof"):
                self.unexpected()
            if self.peek(kind="spread"):
                self.next()
                if self.peek("on"):
                    self.next()
                    on = self.expect(kind="name")[1]
                    self.directives()
                    sel.append({"fragment": on, "sel": self.selection_set()})
                elif self.peek("{") or self.peek("@"):
                    self.directives()
                    sel.append({"fragment": None, "sel": self.selection_set()})
                else:
                    sel.append({"spread": self.expect(kind="name")[1]})
                continue
            _, name, line, col = self.expect(kind="name")
            alias = None
            if self.peek(":"):
                self.next()
                alias, name = name, self.expect(kind="name")[1]
            args = self.arguments() if self.peek("(") else {}
            self.directives()
            sub = self.selection_set() if self.peek("{") else None
            sel.append({"name": name, "alias": alias, "args": args, "sel": sub, "line": line, "col": col})
        self.expect("}")
        return sel

    def arguments(self):
        args = {}
        self.expect("(")
        while not self.peek(")"):
            name = self.expect(kind="name")[1]
            self.expect(":")
            args[name] = self.value()
        self.expect(")")
        return args

    def value(self, const=False):
        kind, v, line, col = self.toks[self.i]
        if v == "$" and kind == "punct" and not const:
            self.next()
            return ("var", self.expect(kind="name")[1], line, col)
        if kind == "num":
            self.next()
            return ("const", float(v) if any(c in v for c in ".eE") else int(v))
        if kind == "str":
            self.next()
            return ("const", json.loads(v))
        if kind == "block":
            self.next()
            return ("const", v[3:-3])
        if kind == "name":
            self.next()
            if v in ("true", "false"):
                return ("const", v == "true")
            if v == "null":
                return ("const", None)
            return ("const", Enum(v))
        if v == "[":
            self.next()
            items = []
            while not self.peek("]"):
                if self.peek(kind="eof"):
                    self.unexpected()
                items.append(self.value(const))
            self.next()
            return ("list", items)
        if v == "{":
            self.next()
            fields = {}
            while not self.peek("}"):
                name = self.expect(kind="name")[1]
                self.expect(":")
                fields[name] = self.value(const)
            self.next()
            return ("obj", fields)
        self.unexpected()


def gql_parse(src):
    return _GQLParser(src).document()


def _gql_value(node, variables):
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "var":
        if node[1] not in variables:
            raise GQLValidationError('Variable "$%s" is not defined.' % node[1], node[2], node[3])
        return variables[node[1]]
    if kind == "list":
        return [_gql_value(n, variables) for n in node[1]]
    return {k: _gql_value(n, variables) for k, n in node[1].items()}


class GQLRequest:
    """One parsed and executed GraphQL request."""

    def __init__(self, query, variables, operation_name):
        self.ops, self.frags = gql_parse(query)
        if operation_name:
            ops = [o for o in self.ops if o["name"] == operation_name]
            if not ops:
                raise GQLValidationError('Unknown operation named "%s".' % operation_name)
            self.op = ops[0]
        elif len(self.ops) > 1:
            raise GQLValidationError("Must provide operation name if query contains multiple operations.")
        else:
            self.op = self.ops[0]
        self.variables = {}
        for name, default in self.op["vars"].items():
            if variables and name in variables:
                self.variables[name] = variables[name]
            elif default is not None:
                self.variables[name] = _gql_value(default, {})
        self.errors = []

    def top_fields(self):
        return [s for s in self.op["sel"] if "name" in s]

    def execute(self, roots, ctx):
        root = roots.get(self.op["type"])
        if root is None:
            raise GQLValidationError("Schema is not configured for %ss." % self.op["type"])
        return self._select(root, self.op["sel"], ctx, [])

    def _matches(self, obj, on):
        if on is None or not isinstance(obj, dict):
            return True
        return on == obj.get("__typename") or on in obj.get("__implements", ())

    def _flatten(self, obj, sel):
        for s in sel:
            if "spread" in s:
                frag = self.frags.get(s["spread"])
                if frag is None:
                    raise GQLValidationError('Unknown fragment "%s".' % s["spread"])
                if self._matches(obj, frag["on"]):
                    yield from self._flatten(obj, frag["sel"])
            elif "fragment" in s:
                if self._matches(obj, s["fragment"]):
                    yield from self._flatten(obj, s["sel"])
            else:
                yield s

    def _select(self, obj, sel, ctx, path):
        out = {}
        for s in self._flatten(obj, sel):
            key = s["alias"] or s["name"]
            if s["name"] == "__typename":
                out[key] = obj.get("__typename")
                continue
            if s["name"] not in obj:
                raise GQLValidationError('Cannot query field "%s" on type "%s".'
                                         % (s["name"], obj.get("__typename", "Object")), s["line"], s["col"])
            value = obj[s["name"]]
            try:
                if callable(value):
                    args = {k: _gql_value(n, self.variables) for k, n in s["args"].items()}
                    value = value(args, ctx)
                out[key] = self._complete(value, s, ctx, path + [key])
            except GQLFieldError as e:
                err = {"message": str(e), "locations": [{"line": s["line"], "column": s["col"]}],
                       "path": path + [key]}
                if e.extensions is not None:
                    err["extensions"] = e.extensions
                err.update(e.extra)
                self.errors.append(err)
                out[key] = None
        return out

    def _complete(self, value, s, ctx, path):
        if value is None:
            return None
        if s["sel"] is None:
            if isinstance(value, dict) and "__typename" in value:
                raise GQLValidationError('Field "%s" of type "%s" must have a selection of subfields.'
                                         % (s["name"], value["__typename"]), s["line"], s["col"])
            return value
        if isinstance(value, list):
            return [self._complete(v, s, ctx, path + [i]) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            raise GQLValidationError('Field "%s" must not have a selection since it has no subfields.'
                                     % s["name"], s["line"], s["col"])
        return self._select(value, s["sel"], ctx, path)


# ---------------------------------------------------------------------------
# Responses.

class Resp:
    def __init__(self, status, body=b"", ctype="application/json", headers=None):
        self.status = status
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        self.body = body.encode() if isinstance(body, str) else body
        self.ctype = ctype
        self.headers = list(headers or [])


def jresp(status, obj, headers=None):
    return Resp(status, json.dumps(obj, separators=(",", ":")), "application/json", headers)


def html_page(status, title=None, server="nginx"):
    reason = HTTP_REASONS.get(status, "Error")
    title = title or "%d %s" % (status, reason)
    return ("<html>\n<head><title>%s</title></head>\n<body>\n<center><h1>%s</h1></center>\n"
            "<hr><center>%s</center>\n</body>\n</html>\n" % (title, title, server))


CLOUDFRONT_403 = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" '
    '"http://www.w3.org/TR/html4/loose.dtd">\n<HTML><HEAD><META HTTP-EQUIV="Content-Type" '
    'CONTENT="text/html; charset=iso-8859-1">\n<TITLE>ERROR: The request could not be satisfied'
    '</TITLE>\n</HEAD><BODY>\n<H1>403 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n'
    "<HR noshade size=\"1px\">\nRequest blocked.\nWe can't connect to the server for this app or "
    "website at this time. There might be too much traffic or a configuration error.\n<BR clear=\"all\">\n"
    "<HR noshade size=\"1px\">\n<PRE>\nGenerated by cloudfront (CloudFront)\n"
    "Request ID: FAKE0000000000000000000000000000000000000000000000000==\n</PRE>\n</BODY></HTML>")

HTTP_REASONS = {
    200: "OK", 301: "Moved Permanently", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 422: "Unprocessable Entity",
    428: "Precondition Required", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

DJANGO_404 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n"
              "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
              "</body>\n</html>\n")


class Req:
    """What a handler needs of a request."""

    def __init__(self, method, path, query, headers, body, host):
        self.method = method
        self.path = path
        self.query = query
        self.params = parse_qs(query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.host = host

    def param(self, name):
        v = self.params.get(name)
        return v[-1] if v else None

    def auth(self):
        return self.headers.get("Authorization")

    def basic(self):
        """(user, password) of a Basic Authorization header, or None."""
        a = self.auth() or ""
        if not a.lower().startswith("basic "):
            return None
        try:
            user, _, pw = base64.b64decode(a[6:].strip(), validate=True).decode().partition(":")
        except Exception:
            return ("", "")
        return user, pw

    def bearer(self):
        a = self.auth() or ""
        if a.lower().startswith("bearer "):
            return a[7:].strip()
        return None


# ---------------------------------------------------------------------------
# Octopus REST (01-octopus-rest.md).

OCT_TARIFF_RE = re.compile(r"^([EG])-(1R|2R)-(.+)-([A-HJ-NP])$")
OCT_AGILE_STANDING = {
    "A": 46.4649, "B": 52.2352, "C": 37.6525, "D": 62.7004, "E": 58.6296, "F": 66.7126, "G": 47.6032,
    "H": 59.2617, "J": 53.1292, "K": 59.1087, "L": 62.9201, "M": 63.1074, "N": 59.1606, "P": 57.0745,
}
OCT_REGIONS = list(OCT_AGILE_STANDING)
OCT_HEADERS = [("Cache-Control", "max-age=300"), ("Access-Control-Allow-Origin", "*"),
               ("Allow", "GET, HEAD, OPTIONS"), ("Vary", "Accept")]
OCT_NOT_FOUND = {"detail": "Not found."}
OCT_FIX_INC = 24.5
OCT_VAR_NON_DD_EXTRA = 1.5


def octopus_product_known(product):
    return bool(re.match(r"^[A-Z0-9][A-Z0-9-]*$", product)) and any(
        w in product for w in ("AGILE", "VAR", "FIX"))


def octopus_kind(product):
    if "AGILE" in product:
        return "agile"
    if "VAR" in product:
        return "var"
    return "fix"


def parse_octopus_datetime(text):
    """DRF DateTimeField as Octopus configures it: ISO 8601 with or without
    an offset; naive values and dates are Europe/London wall time."""
    text = text.strip()
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text)
    if m:
        try:
            return local_midnight("Europe/London", date(*(int(x) for x in m.groups())))
        except ValueError:
            return None
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?"
                 r"(Z|[+-]\d{2}(?::?\d{2})?)?$", text)
    if not m:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    s = int(m.group(6) or 0)
    try:
        naive = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    z = m.group(8)
    if z is None:
        dd = date(y, mo, d)
        return local_to_utc("Europe/London", dd, h, mi) + s
    if z == "Z":
        return naive
    sign = 1 if z[0] == "+" else -1
    digits = z[1:].replace(":", "")
    off = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) >= 4 else 0)
    return naive - sign * off


def drf_link(req, page):
    """DRF's replace_query_param / remove_query_param on the request URL."""
    q = parse_qs(req.query, keep_blank_values=True)
    if page is None:
        q.pop("page", None)
    else:
        q["page"] = [str(page)]
    query = urlencode(sorted(q.items()), doseq=True)
    return urlunsplit(("http", req.host, req.path, query, ""))


class AgileRows:
    """Half-hour rows newest first, computed on demand."""

    def __init__(self, first, last):
        self.first, self.last = first, last
        self.count = (last - first) // 1800 + 1 if last >= first else 0

    def get(self, i):
        s = self.last - 1800 * i
        inc = agile_inc(s)
        return {"value_exc_vat": exc_vat(inc), "value_inc_vat": inc, "valid_from": iso_z(s),
                "valid_to": iso_z(s + 1800), "payment_method": None}


class ListRows:
    def __init__(self, rows):
        self.rows = rows
        self.count = len(rows)

    def get(self, i):
        return self.rows[i]


def _row(exc, inc, frm, to, pm):
    return {"value_exc_vat": exc, "value_inc_vat": inc, "valid_from": iso_z(frm),
            "valid_to": iso_z(to) if to is not None else None, "payment_method": pm}


def _quarters(now):
    """Start instants (Europe/London midnights) of the quarters from
    DATA_START through the one holding now."""
    out = []
    d = date(2020, 1, 1)
    while True:
        t = local_midnight("Europe/London", d)
        if t > now:
            break
        out.append(t)
        d = date(d.year + (d.month + 2) // 12, (d.month + 2) % 12 + 1, 1)
    return out


def var_inc(quarter_index):
    return 22.0 + quarter_index % 5


def octopus_long_rows(kind, product, rate_kind, region, now):
    """Rows of the non-Agile tariffs (and standing charges), newest first."""
    rows = []
    if rate_kind == "standing":
        if kind == "agile":
            exc = OCT_AGILE_STANDING[region]
            rows.append(_row(exc, round(exc * 1.05, 6), DATA_START, None, None))
        elif kind == "var":
            rows.append(_row(45.57, 47.8485, DATA_START, None, "DIRECT_DEBIT"))
            rows.append(_row(50.79, 53.3295, DATA_START, None, "NON_DIRECT_DEBIT"))
        else:
            rows.append(_row(40.0, 42.0, DATA_START, None, "DIRECT_DEBIT"))
        return rows
    if rate_kind in ("day", "night"):
        inc = 28.0 if rate_kind == "day" else 12.0
        return [_row(exc_vat(inc), inc, DATA_START, None, None)]
    if kind == "fix":
        return [_row(exc_vat(OCT_FIX_INC), OCT_FIX_INC, DATA_START, None, None)]
    qs = _quarters(now)
    for i in range(len(qs) - 1, -1, -1):
        frm = qs[i]
        to = qs[i + 1] if i + 1 < len(qs) else None
        dd = var_inc(i)
        nd = round(dd + OCT_VAR_NON_DD_EXTRA, 4)
        rows.append(_row(exc_vat(dd), dd, frm, to, "DIRECT_DEBIT"))
        rows.append(_row(exc_vat(nd), nd, frm, to, "NON_DIRECT_DEBIT"))
    return rows


def _overlaps(row, lo, hi):
    frm = parse_rfc3339(row["valid_from"])
    to = parse_rfc3339(row["valid_to"]) if row["valid_to"] else float("inf")
    return to > lo and frm < hi


def octopus_rates(req, product, tariff, rate_kind, fuel_path):
    now = CLOCK.now()
    m = OCT_TARIFF_RE.match(tariff)
    if not m or m.group(3) != product or not octopus_product_known(product):
        return jresp(404, OCT_NOT_FOUND)
    fuel, reg, _, region = m.groups()
    if (fuel == "E") != (fuel_path == "electricity"):
        return jresp(404, OCT_NOT_FOUND)
    if rate_kind in ("day", "night") and reg != "2R":
        return jresp(404, OCT_NOT_FOUND)
    if rate_kind == "standard" and reg == "2R":
        return jresp(404, OCT_NOT_FOUND)
    pf_text, pt_text = req.param("period_from"), req.param("period_to")
    errors = {}
    pf = pt = None
    if pf_text is not None:
        pf = parse_octopus_datetime(pf_text)
        if pf is None:
            errors["period_from"] = ["Enter a valid date/time."]
    if pt_text is not None:
        pt = parse_octopus_datetime(pt_text)
        if pt is None:
            errors["period_to"] = ["Enter a valid date/time."]
    if errors:
        return jresp(400, errors)
    if pt is not None and pf is None:
        return jresp(400, {"period_from": ["This field is required when providing a `period_to`."]})
    if pf is not None and pt is not None and pf > pt:
        return jresp(400, {"period_from": ["Must not be greater than `period_to`."]})
    page_size = STATE.cfg("page_size")
    ps = req.param("page_size")
    if ps is not None and re.match(r"^\d+$", ps) and int(ps) > 0:
        page_size = int(ps)
    page_size = max(1, min(int(page_size), 1500))

    kind = octopus_kind(product)
    lo = pf if pf is not None else -float("inf")
    hi = pt if pt is not None else float("inf")
    if kind == "agile" and rate_kind == "standard":
        end = available_end("octopus", now)
        # Half hours overlapping [pf, pt): start s with s + 1800 > pf and s < pt.
        first = DATA_START
        if pf is not None:
            first = max(DATA_START, int(math.floor((pf - 1800) / 1800.0)) * 1800 + 1800)
        last = end - 1800
        if pt is not None:
            last = min(last, int(math.ceil(pt / 1800.0)) * 1800 - 1800)
        rows = AgileRows(first, last)
    else:
        all_rows = octopus_long_rows(kind, product, rate_kind, region, now)
        rows = ListRows([r for r in all_rows if _overlaps(r, lo, hi)])
    return paginate(req, rows, page_size, OCT_HEADERS)


def paginate(req, rows, page_size, headers):
    pages = max(1, -(-rows.count // page_size))
    page_text = req.param("page")
    page = 1
    if page_text is not None:
        if page_text == "last":
            page = pages
        elif not re.match(r"^\d+$", page_text) or not 1 <= int(page_text) <= pages:
            return jresp(404, {"detail": "Invalid page."}, headers)
        else:
            page = int(page_text)
    start = (page - 1) * page_size
    results = [rows.get(i) for i in range(start, min(rows.count, start + page_size))]
    body = {
        "count": rows.count,
        "next": drf_link(req, page + 1) if page < pages else None,
        "previous": (drf_link(req, None) if page == 2 else drf_link(req, page - 1)) if page > 1 else None,
        "results": results,
    }
    return jresp(200, body, headers)


def octopus_product(req, product):
    if not octopus_product_known(product):
        return jresp(404, OCT_NOT_FOUND, OCT_HEADERS)
    now = CLOCK.now()
    kind = octopus_kind(product)
    base = "http://%s/v1/products/%s/" % (req.host, product)
    single = {}
    quotes = {}
    for region in OCT_REGIONS:
        code = "E-1R-%s-%s" % (product, region)
        long_rows = octopus_long_rows(kind, product, "standing", region, now)
        sc_exc, sc_inc = long_rows[0]["value_exc_vat"], long_rows[0]["value_inc_vat"]
        if kind == "agile":
            slot = int(now) // 1800 * 1800
            inc = agile_inc(slot)
        elif kind == "var":
            inc = var_inc(len(_quarters(now)) - 1)
        else:
            inc = OCT_FIX_INC
        tariffs_base = base + "electricity-tariffs/%s/" % code
        entry = {
            "code": code,
            "standing_charge_exc_vat": sc_exc, "standing_charge_inc_vat": sc_inc,
            "online_discount_exc_vat": 0, "online_discount_inc_vat": 0,
            "dual_fuel_discount_exc_vat": 0, "dual_fuel_discount_inc_vat": 0,
            "exit_fees_exc_vat": 0, "exit_fees_inc_vat": 0, "exit_fees_type": "NONE",
            "links": [
                {"href": tariffs_base + "standing-charges/", "method": "GET", "rel": "standing_charges"},
                {"href": tariffs_base + "standard-unit-rates/", "method": "GET", "rel": "standard_unit_rates"},
            ],
            "standard_unit_rate_exc_vat": exc_vat(inc), "standard_unit_rate_inc_vat": inc,
        }
        single["_" + region] = {("varying" if kind == "var" else "direct_debit_monthly"): entry}
        annual = int(round(2700 * inc + 365 * sc_inc))
        quotes["_" + region] = {"direct_debit_monthly": {"electricity_single_rate": {
            "annual_cost_inc_vat": annual, "annual_cost_exc_vat": int(round(annual / 1.05))}}}
    names = {"agile": ("Agile Octopus", "With Agile Octopus, you get access to half-hourly energy prices, "
                       "tied to wholesale prices and updated daily.  The unit rate is capped at 100p/kWh "
                       "(including VAT)."),
             "var": ("Flexible Octopus", "Flexible Octopus prices follow wholesale costs."),
             "fix": ("Octopus Fixed", "Fixed prices for the term of the tariff.")}
    display, desc = names[kind]
    body = {
        "code": product,
        "full_name": "%s (fake %s)" % (display, product),
        "display_name": display,
        "description": desc,
        "is_variable": kind != "fix",
        "is_green": kind == "agile",
        "is_tracker": False,
        "is_prepay": False,
        "is_business": False,
        "is_restricted": False,
        "term": 12 if kind == "fix" else None,
        "available_from": iso_z(DATA_START),
        "available_to": None,
        "tariffs_active_at": iso_ms_z(now)[:-1] + "000Z",
        "single_register_electricity_tariffs": single,
        "dual_register_electricity_tariffs": {},
        "single_register_gas_tariffs": {},
        "sample_quotes": quotes,
        "sample_consumption": {
            "electricity_single_rate": {"electricity_standard": 2700},
            "electricity_dual_rate": {"electricity_day": 2262, "electricity_night": 1638},
            "dual_fuel_single_rate": {"electricity_standard": 2700, "gas_standard": 11500},
            "dual_fuel_dual_rate": {"electricity_day": 2262, "electricity_night": 1638, "gas_standard": 11500},
        },
        "links": [{"href": base, "method": "GET", "rel": "self"}],
        "brand": "OCTOPUS_ENERGY",
    }
    return jresp(200, body, OCT_HEADERS)


OCTOPUS_API_KEY = "sk_test_fake"
OCTOPUS_ACCOUNT = "A-FAKE0001"
OCT_ACCOUNT_RE = re.compile(r"^A-[0-9A-Z]{8}$")

DEFAULT_AGREEMENTS = [
    {"tariff_code": "E-1R-VAR-22-11-01-C", "valid_from": "2021-10-23T00:00:00+01:00",
     "valid_to": "2023-04-01T00:00:00+01:00"},
    {"tariff_code": "E-1R-AGILE-FLEX-22-11-25-C", "valid_from": "2023-04-01T00:00:00+01:00",
     "valid_to": "2024-02-15T00:00:00Z"},
    {"tariff_code": "E-1R-AGILE-23-12-06-C", "valid_from": "2024-02-15T00:00:00Z",
     "valid_to": "2025-02-15T00:00:00Z"},
    {"tariff_code": "E-1R-VAR-22-11-01-C", "valid_from": "2025-02-15T00:00:00Z",
     "valid_to": "2025-02-15T00:00:00Z"},
    {"tariff_code": "E-1R-AGILE-24-10-01-C", "valid_from": "2025-02-15T00:00:00Z", "valid_to": None},
]


def account_agreements():
    custom = STATE.cfg("account_agreements")
    return custom if custom is not None else DEFAULT_AGREEMENTS


def octopus_account_body():
    return {
        "number": OCTOPUS_ACCOUNT,
        "properties": [{
            "id": 5024296,
            "moved_in_at": "2021-10-21T00:00:00+01:00",
            "moved_out_at": None,
            "address_line_1": "1",
            "address_line_2": "FAKE STREET",
            "address_line_3": "",
            "town": "LONDON",
            "county": "",
            "postcode": "SW1A 1AA",
            "electricity_meter_points": [
                {
                    "mpan": "1200023305967",
                    "profile_class": 1,
                    "consumption_standard": 2700,
                    "meters": [
                        {"serial_number": "F02C54625", "registers": [
                            {"identifier": "01", "rate": "STANDARD", "is_settlement_register": True}]},
                        {"serial_number": "22J0277224", "registers": [
                            {"identifier": "1", "rate": "STANDARD", "is_settlement_register": True}]},
                    ],
                    "agreements": account_agreements(),
                    "is_export": False,
                },
                {
                    "mpan": "1270023305960",
                    "profile_class": 8,
                    "consumption_standard": 0,
                    "meters": [{"serial_number": "22J0277224", "registers": [
                        {"identifier": "1", "rate": "STANDARD", "is_settlement_register": True}]}],
                    "agreements": [{"tariff_code": "E-1R-AGILE-OUTGOING-19-05-13-C",
                                    "valid_from": "2023-01-01T00:00:00Z", "valid_to": None}],
                    "is_export": True,
                },
            ],
            "gas_meter_points": [{
                "mprn": "3969477010",
                "consumption_standard": 11500,
                "meters": [{"serial_number": "E6S18664862261"}],
                "agreements": [{"tariff_code": "G-1R-VAR-22-11-01-C",
                                "valid_from": "2021-10-23T00:00:00+01:00", "valid_to": None}],
            }],
        }],
    }


def octopus_account(req, number):
    if not OCT_ACCOUNT_RE.match(number):
        return Resp(404, DJANGO_404, "text/html")
    cred = req.basic()
    if cred is None:
        return jresp(401, {"detail": "Authentication credentials were not provided."},
                     [("WWW-Authenticate", 'Basic realm="api"')])
    if cred[0] != OCTOPUS_API_KEY:
        return jresp(401, {"detail": "Invalid API key."}, [("WWW-Authenticate", 'Basic realm="api"')])
    if number != OCTOPUS_ACCOUNT:
        return jresp(404, OCT_NOT_FOUND)
    return jresp(200, octopus_account_body(), [("Allow", "GET, HEAD, OPTIONS"), ("Vary", "Accept")])


def octopus_gsp(req):
    return jresp(200, {"count": 1, "next": None, "previous": None, "results": [{"group_id": "_C"}]})


MPAN_GSP = {"10": "A", "11": "B", "12": "C", "13": "D", "14": "E", "15": "F", "16": "G", "20": "H",
            "19": "J", "21": "K", "22": "L", "23": "M", "18": "N", "17": "P"}


def octopus_meter_point(req, mpan):
    gsp = MPAN_GSP.get(mpan[:2])
    if not re.match(r"^\d{13}$", mpan) or gsp is None:
        return jresp(404, OCT_NOT_FOUND)
    return jresp(200, {"gsp": "_" + gsp, "mpan": mpan, "profile_class": 1})


# ---------------------------------------------------------------------------
# Kraken GraphQL (02-octopus-kraken-graphql.md).

KRAKEN_ISS = "https://api.octopus.energy/v1/graphql/"
KRAKEN_USER = "kraken|account-user:3235447"
KRAKEN_EMAIL = "fake@ratepool.test"
KRAKEN_1143_DESC = ("The value of the HTTP Authorization header is not recognized as a valid access "
                    "credential for this API.  Valid credentials can be generated by calling the "
                    "obtainKrakenToken mutation.")
# code -> (errorType, message, errorDescription, validationErrors inputPath or None, errorClass?)
KRAKEN_ERRORS = {
    "KT-CT-1139": ("VALIDATION", "Invalid data.", "Authentication failed.", ["input", "apiKey"], True),
    "KT-CT-1138": ("VALIDATION", "Invalid data.",
                   "Please make sure the email address and password are correct.", ["input", "email"], True),
    "KT-CT-1134": ("VALIDATION", "Invalid data.", "The refresh token has expired.",
                   ["input", "refreshToken"], True),
    "KT-CT-1135": ("VALIDATION", "Invalid data.", "Please make sure the refresh token is correct.",
                   ["input", "refreshToken"], True),
    "KT-CT-1143": ("AUTHORIZATION", "Value of 'Authorization' header is not a valid credential.",
                   KRAKEN_1143_DESC, None, True),
    "KT-CT-1111": ("AUTHORIZATION", "Unauthorized.",
                   "The viewer is not authorized to execute the query/mutation. Check authentication or "
                   "roles/permissions.", None, True),
    "KT-CT-1112": ("AUTHORIZATION", "'Authorization' header not provided.",
                   "You must provide the AUTHORIZATION header while executing the query/mutation.", None, True),
    "KT-CT-1124": ("APPLICATION", "Signature of the JWT has expired.", "", None, False),
    "KT-CT-1120": ("APPLICATION", "The Kraken Token has expired.", "", None, False),
    "KT-CT-1199": ("AUTHORIZATION", "Too many requests.",
                   "There were too many requests. Please try again later.", None, True),
    "KT-CT-1113": ("SERVICE_AVAILABILITY", "Disabled GraphQL field requested.",
                   "The requested field is disabled.", None, True),
}


def kraken_extensions(code, message=None):
    etype, msg, desc, input_path, with_class = KRAKEN_ERRORS.get(
        code, ("APPLICATION", message or "Fake error.", "", None, True))
    ext = {"errorType": etype, "errorCode": code, "errorDescription": desc}
    if with_class:
        ext["errorClass"] = etype
    if input_path:
        ext["validationErrors"] = [{"message": desc, "inputPath": input_path}]
    return (message or msg), ext


def kraken_error(code, message=None):
    msg, ext = kraken_extensions(code, message)
    return GQLFieldError(msg, ext)


class KrakenCtx:
    def __init__(self, req):
        self.req = req
        self._checked = False
        self.payload = None

    def require_auth(self):
        """The token's payload, or raises the Kraken error a bad token gets."""
        raw = self.req.auth()
        if raw is None or not raw.strip():
            raise kraken_error("KT-CT-1112")
        raw = raw.strip()
        for prefix in ("JWT ", "Bearer "):
            if raw.startswith(prefix):
                raw = raw[len(prefix):].strip()
        payload, problem = check_jwt(raw)
        if problem == "expired":
            raise kraken_error(STATE.cfg("kraken_expired_code") or "KT-CT-1143")
        if problem is not None or payload.get("iss") != KRAKEN_ISS:
            raise kraken_error("KT-CT-1143")
        return payload


def kraken_issue(gty):
    now = int(CLOCK.now())
    life = int(STATE.cfg("kraken_token_lifetime_s"))
    payload = {"sub": KRAKEN_USER, "gty": gty, "email": KRAKEN_EMAIL, "tokenUse": "access", "iss": KRAKEN_ISS,
               "iat": now, "exp": now + life, "origIat": now, "jti": STATE.next_serial()}
    refresh_exp = now + int(STATE.cfg("refresh_token_lifetime_s"))
    return {"token": make_jwt(payload), "refreshToken": make_refresh_token(refresh_exp),
            "refreshExpiresIn": refresh_exp, "payload": payload, "possibleErrors": [],
            "__typename": "ObtainKrakenJSONWebToken"}


def kraken_obtain_token(args, ctx):
    inp = args.get("input")
    if not isinstance(inp, dict):
        raise GQLFieldError("Invalid data.", {"errorType": "VALIDATION", "errorCode": "KT-CT-1139",
                                              "errorDescription": "Authentication failed.",
                                              "errorClass": "VALIDATION"})
    if "APIKey" in inp and inp["APIKey"] is not None:
        if inp["APIKey"] != OCTOPUS_API_KEY:
            raise kraken_error("KT-CT-1139")
        return kraken_issue("API-KEY")
    if inp.get("refreshToken") is not None:
        problem = check_refresh_token(inp["refreshToken"])
        if problem == "expired":
            raise kraken_error("KT-CT-1134")
        if problem is not None:
            raise kraken_error("KT-CT-1135")
        return kraken_issue("REFRESH-TOKEN")
    if inp.get("email") is not None or inp.get("password") is not None:
        raise kraken_error("KT-CT-1138")
    raise kraken_error("KT-CT-1139")


def kraken_datetime(text):
    """REST agreement time -> GraphQL style (offset, never Z)."""
    if text is None:
        return None
    t = parse_rfc3339(text)
    return iso_offset(t, 0) if t is not None else text


def kraken_tariff(code):
    m = OCT_TARIFF_RE.match(code)
    product = m.group(3) if m else code
    kind = octopus_kind(product)
    base = {"id": code, "productCode": product, "tariffCode": code,
            "displayName": {"agile": "Agile Octopus", "var": "Flexible Octopus", "fix": "Octopus Fixed"}[kind],
            "fullName": "%s (fake %s)" % ("Agile Octopus" if kind == "agile" else "Octopus", product),
            "description": "Fake tariff", "standingCharge": 47.60616, "preVatStandingCharge": 45.3392,
            "__implements": ("TariffType",)}
    if kind == "agile":
        def unit_rates(args, ctx):
            now = CLOCK.now()
            start = local_midnight("Europe/London", local_date("Europe/London", now))
            end = available_end("octopus", now)
            return [{"validFrom": iso_offset(s, 0), "validTo": iso_offset(s + 1800, 0), "value": agile_inc(s),
                     "preVatValue": exc_vat(agile_inc(s)), "__typename": "UnitRate"}
                    for s in range(int(start), int(end), 1800)]
        base.update({"__typename": "HalfHourlyTariff", "unitRates": unit_rates})
    else:
        inc = OCT_FIX_INC if kind == "fix" else var_inc(len(_quarters(CLOCK.now())) - 1)
        base.update({"__typename": "StandardTariff", "unitRate": inc, "preVatUnitRate": exc_vat(inc)})
    return base


def kraken_agreement(a, meter_point):
    return {"__typename": "ElectricityAgreementType", "id": abs(hash(a["tariff_code"] + a["valid_from"])) % 10**7,
            "validFrom": kraken_datetime(a["valid_from"]), "validTo": kraken_datetime(a["valid_to"]),
            "tariff": kraken_tariff(a["tariff_code"]), "meterPoint": meter_point}


def kraken_account_obj():
    mp = {"__typename": "ElectricityMeterPointType", "mpan": "1200023305967", "direction": "IMPORT",
          "meters": lambda args, ctx: [{"__typename": "ElectricityMeterType", "id": "1", "serialNumber": "F02C54625"},
                                       {"__typename": "ElectricityMeterType", "id": "2", "serialNumber": "22J0277224"}]}
    agreements = account_agreements()
    mp["agreements"] = lambda args, ctx: [kraken_agreement(a, mp) for a in agreements]

    def electricity_agreements(args, ctx):
        now = CLOCK.now()
        out = []
        for a in agreements:
            frm = parse_rfc3339(a["valid_from"])
            to = parse_rfc3339(a["valid_to"]) if a["valid_to"] else float("inf")
            if args.get("active", False) and not (frm <= now < to):
                continue
            if frm == to:
                continue
            out.append(kraken_agreement(a, mp))
        return out

    return {"__typename": "AccountType", "id": "1234567", "number": OCTOPUS_ACCOUNT, "status": "LIVE",
            "balance": 0, "electricityAgreements": electricity_agreements}


def kraken_account(args, ctx):
    ctx.require_auth()
    if args.get("accountNumber") != OCTOPUS_ACCOUNT:
        raise kraken_error("KT-CT-1111")
    return kraken_account_obj()


def kraken_viewer(args, ctx):
    ctx.require_auth()
    return {"__typename": "AccountUserType", "id": "3235447", "email": KRAKEN_EMAIL,
            "accounts": lambda a, c: [kraken_account_obj()]}


KRAKEN_ROOTS = {
    "query": {"__typename": "Query", "account": kraken_account, "viewer": kraken_viewer},
    "mutation": {"__typename": "Mutation", "obtainKrakenToken": kraken_obtain_token},
}


def graphql_body(req):
    """(query, variables, operationName) of a GraphQL POST, JSON or form
    encoded; raises ValueError on a body that is neither."""
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    text = req.body.decode("utf-8", "replace")
    if ctype == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        q = form.get("query", [None])[-1]
        v = form.get("variables", [None])[-1]
        variables = json.loads(v) if v else {}
        return q, variables, form.get("operationName", [None])[-1]
    if ctype == "application/graphql":
        return text, {}, None
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    variables = obj.get("variables") or {}
    if isinstance(variables, str):
        variables = json.loads(variables) if variables.strip() else {}
    return obj.get("query"), variables, obj.get("operationName")


def top_field_of(req):
    """(name, line, col) of the first top-level field of the request's query,
    for fault envelopes; a guess when the query does not parse."""
    try:
        q, v, op = graphql_body(req)
        g = GQLRequest(q or "", v, op)
        f = g.top_fields()[0]
        return f["name"], f["line"], f["col"]
    except Exception:
        return None, 1, 1


def kraken_graphql(req):
    try:
        q, variables, op = graphql_body(req)
    except Exception:
        return jresp(400, {"errors": [{"message": "Unable to parse request body as JSON."}]})
    if not q:
        return jresp(400, {"errors": [{"message": "Must provide query string."}]})
    try:
        g = GQLRequest(q, variables if isinstance(variables, dict) else {}, op)
        data = g.execute(KRAKEN_ROOTS, KrakenCtx(req))
    except GQLSyntaxError as e:
        return jresp(400, {"errors": [{"message": str(e), "locations": [{"line": e.line, "column": e.col}]}]})
    except GQLValidationError as e:
        err = {"message": str(e)}
        if e.line:
            err["locations"] = [{"line": e.line, "column": e.col}]
        return jresp(400, {"errors": [err]})
    if g.errors:
        return jresp(200, {"errors": g.errors, "data": data})
    return jresp(200, {"data": data})


def kraken_fault_body(req, code, message=None):
    name, line, col = top_field_of(req)
    name = name or "obtainKrakenToken"
    msg, ext = kraken_extensions(code, message)
    return {"errors": [{"message": msg, "locations": [{"line": line, "column": col}], "path": [name],
                        "extensions": ext}], "data": {name: None}}


# ---------------------------------------------------------------------------
# Tibber GraphQL (03-tibber-graphql.md).

TIBBER_TOKEN = "tibber-test-token"
TIBBER_HOME = "96a14971-525a-4420-aae9-e5aedaa129ff"
TIBBER_ZONE = "Europe/Berlin"
TIBBER_429 = "Too many requests. Your IP is now temporarily banned for calling API for a few minutes."


def tibber_price(t, hourly):
    energy = tibber_energy(t, hourly)
    tax = round(0.05 + 0.19 * energy, 4)
    return {"__typename": "Price", "total": round(energy + tax, 4), "energy": energy, "tax": tax,
            "startsAt": iso_local(TIBBER_ZONE, t, ms=bool(STATE.cfg("tibber_startsat_ms"))),
            "currency": "EUR", "level": tibber_level(energy)}


def tibber_day(d, hourly):
    start = local_midnight(TIBBER_ZONE, d)
    end = local_midnight(TIBBER_ZONE, d + timedelta(days=1))
    step = 3600 if hourly else 900
    return [tibber_price(t, hourly) for t in range(int(start), int(end), step)]


def tibber_price_info(args, ctx):
    res = args.get("resolution", "HOURLY")
    if res is None:
        res = "HOURLY"
    if res not in ("HOURLY", "QUARTER_HOURLY"):
        raise GQLValidationError('Value "%s" does not exist in "PriceInfoResolution" enum.' % res)
    hourly = res == "HOURLY"
    now = CLOCK.now()
    today = local_date(TIBBER_ZONE, now)
    step = 3600 if hourly else 900
    cur = int(now) // step * step
    published = available_end("tibber", now) > local_midnight(TIBBER_ZONE, today + timedelta(days=1))
    return {"__typename": "PriceInfo",
            "current": lambda a, c: tibber_price(cur, hourly),
            "today": lambda a, c: tibber_day(today, hourly),
            "tomorrow": lambda a, c: tibber_day(today + timedelta(days=1), hourly) if published else []}


def tibber_home():
    return {
        "__typename": "Home", "id": TIBBER_HOME, "timeZone": TIBBER_ZONE, "appNickname": "Fake home",
        "appAvatar": "HOUSE", "type": "HOUSE", "size": 120, "mainFuseSize": 25, "numberOfResidents": 2,
        "primaryHeatingSource": "ELECTRICITY", "hasVentilationSystem": False,
        "address": {"__typename": "Address", "address1": "Fakestrasse 1", "address2": None, "address3": None,
                    "city": "Berlin", "postalCode": "10115", "country": "DE", "latitude": "52.53",
                    "longitude": "13.38"},
        "features": {"__typename": "HomeFeatures", "realTimeConsumptionEnabled": False},
        "currentSubscription": {
            "__typename": "Subscription", "id": "a1b2c3d4-0000-4000-8000-000000000001", "status": "running",
            "validFrom": "2024-01-01T00:00:00.000+01:00", "validTo": None,
            "priceInfo": tibber_price_info,
        },
    }


def tibber_home_by_id(args, ctx):
    if args.get("id") != TIBBER_HOME:
        raise GQLFieldError("home not found", {"code": "NOT_FOUND"})
    return tibber_home()


TIBBER_ROOTS = {"query": {"__typename": "Query", "viewer": {
    "__typename": "Viewer", "login": "fake@ratepool.test", "userId": "0f0e0d0c-0000-4000-8000-000000000002",
    "name": "Fake Tibber User", "accountType": ["tibber", "customer"],
    "websocketSubscriptionUrl": "wss://websocket-api.tibber.com/v1-beta/gql/subscriptions",
    "homes": lambda a, c: [tibber_home()],
    "home": tibber_home_by_id,
}}}


def tibber_auth_error(message):
    return jresp(200, {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}], "data": None})


def tibber_graphql(req):
    token = req.bearer()
    if token is None:
        return tibber_auth_error("Context creation failed: no token")
    if token != TIBBER_TOKEN:
        return tibber_auth_error("Context creation failed: invalid token")
    try:
        q, variables, op = graphql_body(req)
    except Exception:
        return jresp(400, {"errors": [{"message": "POST body sent invalid JSON.",
                                       "extensions": {"code": "BAD_REQUEST"}}]})
    if not q:
        return jresp(400, {"errors": [{"message": "GraphQL operations must contain a non-empty `query`.",
                                       "extensions": {"code": "BAD_REQUEST"}}]})
    try:
        g = GQLRequest(q, variables if isinstance(variables, dict) else {}, op)
        data = g.execute(TIBBER_ROOTS, None)
    except GQLSyntaxError as e:
        return jresp(400, {"errors": [{"message": str(e), "locations": [{"line": e.line, "column": e.col}],
                                       "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]})
    except GQLValidationError as e:
        err = {"message": str(e)}
        if e.line:
            err["locations"] = [{"line": e.line, "column": e.col}]
        err["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
        return jresp(400, {"errors": [err]})
    if g.errors:
        return jresp(200, {"data": data, "errors": g.errors})
    return jresp(200, {"data": data})


TIBBER_FAULT_MESSAGES = {
    "UNAUTHENTICATED": "Context creation failed: invalid token",
    "INTERNAL_SERVER_ERROR": "operation not allowed for demo user",
    "NOT_FOUND": "home not found",
}


def tibber_fault_body(code, message=None):
    return {"errors": [{"message": message or TIBBER_FAULT_MESSAGES.get(code, "Fake error."),
                        "extensions": {"code": code}}], "data": None}


# ---------------------------------------------------------------------------
# WattTime v3 (04-watttime-v3.md).

WATTTIME_USER = "ratepool"
WATTTIME_PASSWORD = "fake-password"
WATTTIME_ISS = "WattTime"
WT_PLAN = {"CAISO_NORTH": "California ISO Northern", "PSCO": "Public Service Co of Colorado",
           "DE": "Germany", "GB": "Great Britain", "NL": "Netherlands"}
WT_OTHER = {"CAISO_SOUTH": "California ISO Southern", "ERCOT_EASTTX": "ERCOT East Texas",
            "PJM_DC": "PJM DC", "FR": "France", "IE": "Ireland", "SPP_KANSAS": "SPP Kansas"}
WT_SIGNALS = {"co2_moer": "lbs_co2_per_mwh", "co2_aoer": "lbs_co2_per_mwh", "health_damage": "$_per_mwh"}
WT_SCOPE = ("Invalid scope. You do not have sufficient access to this resource. See "
            "https://api.watttime.org/plans/ for more information or email contact@watttime.org for pricing. "
            "Please note that all users are allowed free access to CAISO_ZP26.")
WT_MODEL = "2023-03-01"


def nginx_403():
    return Resp(403, html_page(403), "text/html")


def watttime_login(req):
    cred = req.basic()
    if cred is None:
        return jresp(401, {"error": "Missing Authorization header"})
    if cred != (WATTTIME_USER, WATTTIME_PASSWORD):
        return nginx_403()
    now = int(CLOCK.now())
    payload = {"iss": WATTTIME_ISS, "sub": WATTTIME_USER, "iat": now,
               "exp": now + int(STATE.cfg("watttime_token_lifetime_s")), "jti": STATE.next_serial()}
    return jresp(200, {"token": make_jwt(payload, "HS256")})


def watttime_auth(req):
    """None when the bearer token is good, else the answer to give."""
    tok = req.bearer()
    if tok is None:
        return jresp(401, {"error": "Missing Authorization header"})
    payload, problem = check_jwt(tok)
    if problem is None and payload.get("iss") == WATTTIME_ISS:
        return None
    if problem == "expired" and int(STATE.cfg("watttime_expired_status")) == 403:
        return nginx_403()
    return jresp(401, {"error": "Unauthorized: token is invalid or expired"})


def wt_bad(message):
    return jresp(400, {"error": "Invalid query parameters", "message": message})


def watttime_region_check(req):
    """(region, signal_type, None) or (.., .., error answer)."""
    region, signal_type = req.param("region"), req.param("signal_type")
    if not region:
        return region, signal_type, wt_bad("Missing required parameter: region")
    if not signal_type:
        return region, signal_type, wt_bad("Missing required parameter: signal_type")
    if signal_type not in WT_SIGNALS:
        return region, signal_type, wt_bad("Invalid signal_type: %s" % signal_type)
    if region not in WT_PLAN and region not in WT_OTHER:
        return region, signal_type, wt_bad("Invalid region: %s" % region)
    if region not in WT_PLAN:
        return region, signal_type, jresp(403, {"error": "Invalid query parameters", "message": WT_SCOPE})
    return region, signal_type, None


def watttime_meta(region, signal_type, **extra):
    meta = {"data_point_period_seconds": 300, "region": region, "warnings": [], "signal_type": signal_type,
            "model": {"date": WT_MODEL}, "units": WT_SIGNALS[signal_type]}
    meta.update(extra)
    return meta


def watttime_forecast(req):
    bad = watttime_auth(req)
    if bad:
        return bad
    region, signal_type, bad = watttime_region_check(req)
    if bad:
        return bad
    hh = req.param("horizon_hours")
    horizon = 24
    if hh is not None:
        if not re.match(r"^\d+$", hh) or int(hh) > 72:
            return wt_bad("horizon_hours must be an integer from 0 to 72")
        horizon = int(hh)
    g = int(CLOCK.now()) // 300 * 300
    n = max(1, horizon * 12)
    data = [{"point_time": iso_offset(g + 300 * i, 0), "value": watttime_value(signal_type, g + 300 * i, g)}
            for i in range(n)]
    meta = watttime_meta(region, signal_type, generated_at_period_seconds=300, generated_at=iso_offset(g, 0))
    return jresp(200, {"data": data, "meta": meta})


def watttime_signal_index(req):
    bad = watttime_auth(req)
    if bad:
        return bad
    region, signal_type = req.param("region"), req.param("signal_type")
    if region not in WT_PLAN and region not in WT_OTHER:
        return wt_bad("Invalid region: %s" % region)
    if signal_type not in WT_SIGNALS:
        return wt_bad("Invalid signal_type: %s" % signal_type)
    g = int(CLOCK.now()) // 300 * 300
    meta = watttime_meta(region, signal_type)
    meta["units"] = "percentile"
    return jresp(200, {"data": [{"point_time": iso_offset(g, 0), "value": round(50 + 50 * wave(g), 1)}],
                       "meta": meta})


def watttime_region_from_loc(req):
    bad = watttime_auth(req)
    if bad:
        return bad
    lat, lon, st = req.param("latitude") or "", req.param("longitude") or "", req.param("signal_type") or ""
    try:
        la, lo = float(lat), float(lon)
    except ValueError:
        return wt_bad("latitude and longitude must be numbers")
    region = None
    if 37 <= la <= 41 and -109 <= lo <= -102:
        region = "PSCO"
    elif 36 <= la <= 42 and -124.5 <= lo <= -119:
        region = "CAISO_NORTH"
    elif 47 <= la <= 55 and 6 <= lo <= 15:
        region = "DE"
    if region is None:
        return jresp(404, {"error": "No coverage available for these coordinates and signal_type",
                           "latitude": lat, "longitude": lon, "signal_type": st})
    return jresp(200, {"region": region, "region_full_name": WT_PLAN[region], "signal_type": st})


def watttime_my_access(req):
    bad = watttime_auth(req)
    if bad:
        return bad
    models = [{"model": WT_MODEL, "data_start": "2022-10-01", "train_start": "2019-02-01",
               "train_end": "2022-10-01", "type": "binned_regression"}]
    regions = [{"region": r, "region_full_name": name, "parent": r.split("_")[0], "data_point_period_seconds": 300,
                "endpoints": [{"endpoint": "v3/forecast", "models": models},
                              {"endpoint": "v3/historical", "models": models}]}
               for r, name in WT_PLAN.items()]
    return jresp(200, {"signal_types": [
        {"signal_type": "co2_moer", "regions": regions},
        {"signal_type": "co2_aoer", "regions": []},
        {"signal_type": "health_damage", "regions": regions},
        {"signal_type": "marginal_fuel_mix", "regions": []},
    ]})


# ---------------------------------------------------------------------------
# AEMO NEM (05-aemo-nem-and-amber.md part A).

AEMO_DEMAND = {"NSW1": 6600.0, "QLD1": 5900.0, "SA1": 1100.0, "TAS1": 1050.0, "VIC1": 4100.0}
AEMO_FLOWS = {
    "NSW1": '[{"name":"N-Q-MNSP1","value":-52.0,"exportlimit":107.0,"importlimit":-264.0},'
            '{"name":"NSW1-QLD1","value":-418.4,"exportlimit":754.0,"importlimit":-1286.0},'
            '{"name":"VIC1-NSW1","value":188.7,"exportlimit":1020.0,"importlimit":-870.0}]',
    "QLD1": '[{"name":"N-Q-MNSP1","value":-52.0,"exportlimit":107.0,"importlimit":-264.0},'
            '{"name":"NSW1-QLD1","value":-418.4,"exportlimit":754.0,"importlimit":-1286.0}]',
    "SA1": '[{"name":"V-SA","value":-310.2,"exportlimit":650.0,"importlimit":-550.0},'
           '{"name":"V-S-MNSP1","value":-84.9,"exportlimit":220.0,"importlimit":-200.0}]',
    "TAS1": '[{"name":"T-V-MNSP1","value":160.0,"exportlimit":478.0,"importlimit":-478.0}]',
    "VIC1": '[{"name":"T-V-MNSP1","value":160.0,"exportlimit":478.0,"importlimit":-478.0},'
            '{"name":"V-SA","value":-310.2,"exportlimit":650.0,"importlimit":-550.0},'
            '{"name":"VIC1-NSW1","value":188.7,"exportlimit":1020.0,"importlimit":-870.0}]',
}


def aemo_rrp(region, end, decimals=5):
    """RRP of the interval ending at `end`; config aemo_prices overrides."""
    for o in STATE.cfg("aemo_prices") or []:
        if o.get("region") not in (None, region):
            continue
        frm = parse_rfc3339(o["from"]) if o.get("from") else -float("inf")
        to = parse_rfc3339(o["to"]) if o.get("to") else float("inf")
        start = end - 300
        if frm <= start < to:
            return float(o["rrp"])
    return round(aemo_rrp_raw(region, end), decimals)


def nem_time(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t) + 36000))


def aemo_latest_end(now):
    return int(now - int(STATE.cfg("aemo_delay_s"))) // 300 * 300


def aemo_row(region, end, period_type):
    demand = round(AEMO_DEMAND[region] * (1 + 0.15 * wave(end)), 2)
    sched = round(demand * 0.45, 5)
    row = {"SETTLEMENTDATE": nem_time(end), "REGIONID": region, "REGION": region,
           "RRP": aemo_rrp(region, end, 5 if period_type == "ACTUAL" else 2),
           "TOTALDEMAND": demand, "NETINTERCHANGE": round(demand * -0.04, 2),
           "SCHEDULEDGENERATION": sched, "SEMISCHEDULEDGENERATION": round(demand - sched, 5),
           "PERIODTYPE": period_type, "APCFLAG": 0.0}
    return row


def aemo_5min(req):
    try:
        body = json.loads(req.body.decode("utf-8") or "null")
        scales = body.get("timeScale") if isinstance(body, dict) else None
        if not isinstance(scales, list) or not scales or any(s not in ("5MIN", "30MIN") for s in scales):
            raise ValueError("timeScale")
    except Exception:
        return jresp(500, {"message": "An error has occurred."})
    latest = aemo_latest_end(CLOCK.now())
    rows = []
    for region in sorted(AEMO_REGIONS):
        for k in range(287, -1, -1):
            rows.append(aemo_row(region, latest - 300 * k, "ACTUAL"))
        first = latest // 1800 * 1800 + 1800
        for k in range(34):
            rows.append(aemo_row(region, first + 1800 * k, "FORECAST"))
    return jresp(200, {"5MIN": rows}, [("Cache-Control", "public, max-age=4")])


def aemo_summary(req):
    latest = aemo_latest_end(CLOCK.now())
    summary, prices = [], []
    for region in sorted(AEMO_REGIONS):
        price = aemo_rrp(region, latest)
        row = aemo_row(region, latest, "ACTUAL")
        summary.append({"SETTLEMENTDATE": nem_time(latest), "REGIONID": region, "PRICE": price,
                        "PRICE_STATUS": "FIRM", "APCFLAG": 0.0, "MARKETSUSPENDEDFLAG": 0.0,
                        "TOTALDEMAND": row["TOTALDEMAND"], "NETINTERCHANGE": row["NETINTERCHANGE"],
                        "SCHEDULEDGENERATION": row["SCHEDULEDGENERATION"],
                        "SEMISCHEDULEDGENERATION": row["SEMISCHEDULEDGENERATION"],
                        "INTERCONNECTORFLOWS": AEMO_FLOWS[region]})
        prices.append({"REGIONID": region, "RRP": price, "RAISEREGRRP": 4.97, "LOWERREGRRP": 1.0,
                       "RAISE1SECRRP": 0.01, "RAISE6SECRRP": 0.04, "RAISE60SECRRP": 0.03, "RAISE5MINRRP": 0.01,
                       "LOWER1SECRRP": 0.0, "LOWER6SECRRP": 0.01, "LOWER60SECRRP": 0.01, "LOWER5MINRRP": 0.02})
    notice = {"NOTICEID": 140958, "EFFECTIVEDATE": nem_time(latest - 1800),
              "EXTERNALREFERENCE": "NON-CONFORMANCE Region NSW1 (fake)", "TYPEID": "NON-CONFORMANCE",
              "REASON": "AEMO ELECTRICITY MARKET NOTICE\n\nFake notice from the ratepool fake upstream."}
    return jresp(200, {"ELEC_NEM_SUMMARY": summary, "ELEC_NEM_SUMMARY_PRICES": prices,
                       "ELEC_NEM_SUMMARY_MARKET_NOTICE": [notice]},
                 [("Cache-Control", "public, max-age=30")])


# ---------------------------------------------------------------------------
# Energy-Charts (06-energy-charts.md).

EC_ZONE_TZ = "Europe/Berlin"
EC_LICENSE = "CC BY 4.0 (creativecommons.org/licenses/by/4.0) from Bundesnetzagentur | SMARD.de"


def ec_parse_time(text, is_end):
    """Exclusive bound from a start/end value, or None when unparsable."""
    text = text.strip()
    if re.match(r"^-?\d+$", text):
        t = int(text)
        return t + 1 if is_end else t
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text)
    if m:
        try:
            d = date(*(int(x) for x in m.groups()))
        except ValueError:
            return None
        return local_midnight(EC_ZONE_TZ, d + timedelta(days=1) if is_end else d)
    t = parse_rfc3339(text if re.search(r":\d{2}:\d{2}", text) else re.sub(
        r"T(\d{2}):(\d{2})", r"T\1:\2:00", text))
    if t is None:
        m = re.match(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$", text)
        if not m:
            return None
        y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
        try:
            t = local_to_utc(EC_ZONE_TZ, date(y, mo, d), h, mi) + int(m.group(6) or 0)
        except ValueError:
            return None
    return t + 1 if is_end else t


def ec_slots(lo, hi, avail_end):
    """Slot starts in [lo, hi): hourly before the cutover, 15 min after."""
    lo = max(lo, DATA_START)
    hi = min(hi, avail_end)
    out = []
    t = int(math.ceil(lo / 900.0)) * 900
    while t < hi:
        if t < EC_CUTOVER:
            if t % 3600:
                t = t - t % 3600 + 3600
                continue
            out.append(t)
            t += 3600
        else:
            out.append(t)
            t += 900
    return out


def energycharts_price(req):
    bzn = req.param("bzn") or "DE-LU"
    if bzn not in EC_ZONES:
        return jresp(400, {"detail": "bzn not found"})
    if bzn == "DE-AT-LU":
        return Resp(500, "Internal Server Error", "text/plain; charset=utf-8")
    now = CLOCK.now()
    today = local_date(EC_ZONE_TZ, now)
    lo = local_midnight(EC_ZONE_TZ, today)
    hi = local_midnight(EC_ZONE_TZ, today + timedelta(days=1))
    for name in ("start", "end"):
        v = req.param(name)
        if v is None or v == "":
            continue
        t = ec_parse_time(v, name == "end")
        if t is None:
            return jresp(422, {"detail": [{"loc": ["query", name], "msg": "invalid date format",
                                           "type": "value_error"}]})
        if name == "start":
            lo = t
        else:
            hi = t
    slots = ec_slots(lo, hi, available_end("energycharts", now))
    if not slots:
        return jresp(404, {"detail": "no content available"})
    nulls = set()
    for s in STATE.cfg("energycharts_null_slots") or []:
        t = parse_rfc3339(s) if isinstance(s, str) else s
        if t is not None:
            nulls.add(int(t))
    prices = [None if t in nulls else ec_price(bzn, t) for t in slots]
    return jresp(200, {"license_info": EC_LICENSE, "unix_seconds": slots, "price": prices,
                       "unit": "EUR / MWh", "deprecated": False})


# ---------------------------------------------------------------------------
# Routing.

ROUTES = [
    ("GET", re.compile(r"^/v1/products/([^/]+)/(electricity|gas)-tariffs/([^/]+)/"
                       r"(standard|day|night)-unit-rates/$"), "octopus_rates",
     lambda r, m: octopus_rates(r, m.group(1), m.group(3), m.group(4), m.group(2))),
    ("GET", re.compile(r"^/v1/products/([^/]+)/(electricity|gas)-tariffs/([^/]+)/standing-charges/$"),
     "octopus_standing_charges",
     lambda r, m: octopus_rates(r, m.group(1), m.group(3), "standing", m.group(2))),
    ("GET", re.compile(r"^/v1/products/([^/]+)/$"), "octopus_product", lambda r, m: octopus_product(r, m.group(1))),
    ("GET", re.compile(r"^/v1/accounts/([^/]+)/$"), "octopus_account", lambda r, m: octopus_account(r, m.group(1))),
    ("GET", re.compile(r"^/v1/industry/grid-supply-points/$"), "octopus_other", lambda r, m: octopus_gsp(r)),
    ("GET", re.compile(r"^/v1/electricity-meter-points/([^/]+)/$"), "octopus_other",
     lambda r, m: octopus_meter_point(r, m.group(1))),
    ("POST", re.compile(r"^/v1/graphql/$"), "kraken_graphql", lambda r, m: kraken_graphql(r)),
    ("POST", re.compile(r"^/v1-beta/gql/?$"), "tibber_graphql", lambda r, m: tibber_graphql(r)),
    ("GET", re.compile(r"^/login/?$"), "watttime_login", lambda r, m: watttime_login(r)),
    ("GET", re.compile(r"^/v3/forecast/?$"), "watttime_forecast", lambda r, m: watttime_forecast(r)),
    ("GET", re.compile(r"^/v3/signal-index/?$"), "watttime_other", lambda r, m: watttime_signal_index(r)),
    ("GET", re.compile(r"^/v3/region-from-loc/?$"), "watttime_other", lambda r, m: watttime_region_from_loc(r)),
    ("GET", re.compile(r"^/v3/my-access/?$"), "watttime_other", lambda r, m: watttime_my_access(r)),
    ("POST", re.compile(r"^/aemo/apps/api/report/5MIN$"), "aemo_5min", lambda r, m: aemo_5min(r)),
    ("GET", re.compile(r"^/aemo/apps/api/report/ELEC_NEM_SUMMARY$"), "aemo_summary", lambda r, m: aemo_summary(r)),
    ("GET", re.compile(r"^/price/?$"), "energycharts_price", lambda r, m: energycharts_price(r)),
]


def route(method, path):
    """(endpoint name, handler or an answer for a path served with another
    method or without Django's trailing slash)."""
    other = None
    for m_, rx, name, fn in ROUTES:
        m = rx.match(path)
        if not m:
            if path.startswith("/v1/") and not path.endswith("/") and rx.match(path + "/") and method == m_:
                return name, lambda r: Resp(301, b"", "text/html; charset=utf-8",
                                            [("Location", path + "/" + ("?" + r.query if r.query else ""))])
            continue
        if method == m_ or (method == "HEAD" and m_ == "GET"):
            return name, (lambda r, fn=fn, m=m: fn(r, m))
        other = name, (lambda r, allowed=m_: Resp(
            405, json.dumps({"detail": 'Method "%s" not allowed.' % r.method}), "application/json",
            [("Allow", allowed)]))
    if other:
        return other
    if path.startswith("/v1/"):
        return "unknown", lambda r: Resp(404, DJANGO_404, "text/html")
    return "unknown", lambda r: Resp(404, "Not Found", "text/plain; charset=utf-8")


# ---------------------------------------------------------------------------
# Faults (README.md "Control API").

def provider_of(endpoint):
    return endpoint.split("_")[0]


def not_found_body(endpoint):
    p = provider_of(endpoint)
    if p == "octopus":
        return jresp(404, OCT_NOT_FOUND)
    if p == "energycharts":
        return Resp(404, json.dumps({"detail": "no content available"}))
    if p == "watttime":
        return Resp(404, json.dumps({"error": "Not found"}))
    if p == "aemo":
        return Resp(404, html_page(404, server="Microsoft-IIS/10.0"), "text/html")
    return Resp(404, json.dumps({"message": "Not Found"}))


def default_status_answer(endpoint, status):
    """A realistic body for an injected status on that endpoint."""
    p = provider_of(endpoint)
    if status == 404:
        return not_found_body(endpoint)
    if status == 429:
        if p == "tibber":
            return Resp(429, TIBBER_429, "text/plain; charset=utf-8")
        if p == "watttime":
            return Resp(429, json.dumps({"error": "Too many requests"}))
        if p == "octopus":
            return Resp(429, json.dumps({"detail": "Request was throttled."}))
        if p == "energycharts":
            return Resp(429, "Too Many Requests", "text/plain; charset=utf-8")
        return Resp(429, html_page(429), "text/html")
    if status == 401:
        if p == "octopus":
            return Resp(401, json.dumps({"detail": "Invalid API key."}), headers=[("WWW-Authenticate", 'Basic realm="api"')])
        if p == "watttime":
            return Resp(401, json.dumps({"error": "Unauthorized: token is invalid or expired"}))
        if p == "tibber":
            return Resp(401, json.dumps(tibber_fault_body("UNAUTHENTICATED")))
        return Resp(401, json.dumps({"detail": "Unauthorized"}))
    if status == 500:
        if p == "energycharts":
            return Resp(500, "Internal Server Error", "text/plain; charset=utf-8")
        if p == "aemo":
            return Resp(500, json.dumps({"message": "An error has occurred."}))
        if p == "tibber":
            return Resp(500, json.dumps({"errors": [{"message": "Internal server error",
                                                     "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}))
        if p == "watttime":
            return Resp(500, json.dumps({"error": "Internal Server Error"}))
        return Resp(500, DJANGO_500, "text/html")
    if status in (403, 502, 503, 504) or status >= 500:
        return Resp(status, html_page(status), "text/html")
    if 200 <= status < 300:
        return Resp(status, "{}")
    if 300 <= status < 400:
        return Resp(status, b"", "text/html")
    return Resp(status, json.dumps({"detail": HTTP_REASONS.get(status, "Error")}))


DJANGO_500 = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"


def rate_limit_answer(endpoint, req, fault):
    p = provider_of(endpoint)
    ra = fault.get("retry_after")
    hdr = [("Retry-After", str(ra))] if ra is not None else []
    if p == "kraken":
        return Resp(200, json.dumps(kraken_fault_body(req, "KT-CT-1199")))
    if p == "aemo":
        r = Resp(503, html_page(503), "text/html")
    else:
        r = default_status_answer(endpoint, 429)
    r.headers += hdr
    return r


def empty_answer(endpoint, req):
    if endpoint in ("octopus_rates", "octopus_standing_charges"):
        return jresp(200, {"count": 0, "next": None, "previous": None, "results": []}, OCT_HEADERS)
    if endpoint == "tibber_graphql":
        return jresp(200, {"data": {"viewer": {"home": {"currentSubscription": {"priceInfo": {
            "current": None, "today": [], "tomorrow": []}}}}}})
    if endpoint == "watttime_forecast":
        g = int(CLOCK.now()) // 300 * 300
        return jresp(200, {"data": [], "meta": watttime_meta(req.param("region") or "CAISO_NORTH", "co2_moer",
                                                              generated_at_period_seconds=300,
                                                              generated_at=iso_offset(g, 0))})
    if endpoint == "aemo_5min":
        return jresp(200, {"5MIN": []})
    if endpoint == "aemo_summary":
        return jresp(200, {"ELEC_NEM_SUMMARY": [], "ELEC_NEM_SUMMARY_PRICES": [], "ELEC_NEM_SUMMARY_MARKET_NOTICE": []})
    if endpoint == "energycharts_price":
        return jresp(200, {"license_info": EC_LICENSE, "unix_seconds": [], "price": [], "unit": "EUR / MWh",
                           "deprecated": False})
    if endpoint == "octopus_account":
        return jresp(200, {"number": OCTOPUS_ACCOUNT, "properties": []})
    if endpoint == "kraken_graphql":
        name, _, _ = top_field_of(req)
        return jresp(200, {"data": {name or "obtainKrakenToken": None}})
    return jresp(200, {})


def garbage_answer(endpoint, req):
    """Valid JSON whose data lies: NaN-like strings, overlapping or
    misordered slots, missing fields, wrong types."""
    now = int(CLOCK.now())
    s = now // 1800 * 1800
    if endpoint in ("octopus_rates", "octopus_standing_charges"):
        rows = [
            {"value_exc_vat": "NaN", "value_inc_vat": "NaN", "valid_from": iso_z(s), "valid_to": iso_z(s + 1800),
             "payment_method": None},
            {"value_exc_vat": 10.0, "value_inc_vat": 10.5, "valid_from": iso_z(s + 900), "valid_to": iso_z(s + 2700),
             "payment_method": None},
            {"value_exc_vat": 1e308, "value_inc_vat": -1e308, "valid_from": iso_z(s + 3600),
             "valid_to": iso_z(s + 1800), "payment_method": None},
            {"value_inc_vat": 12.0, "valid_from": "yesterday", "payment_method": None},
        ]
        return jresp(200, {"count": 4, "next": None, "previous": None, "results": rows}, OCT_HEADERS)
    if endpoint == "tibber_graphql":
        z = lambda t: iso_local(TIBBER_ZONE, t, True)
        today = [{"total": "NaN", "energy": None, "tax": 0.1, "startsAt": z(s), "currency": "EUR", "level": "NORMAL"},
                 {"total": 0.3, "energy": 0.2, "tax": 0.1, "startsAt": z(s), "currency": "EUR", "level": "NORMAL"},
                 {"total": 1e300, "energy": 0.2, "tax": 0.1, "startsAt": "not a time", "currency": "EUR",
                  "level": "BOGUS"},
                 {"energy": 0.2}]
        return jresp(200, {"data": {"viewer": {"home": {"currentSubscription": {"priceInfo": {
            "current": today[0], "today": today, "tomorrow": [{"total": -5e300, "startsAt": z(s - 86400)}]}}}}}})
    if endpoint == "watttime_forecast":
        g = now // 300 * 300
        data = [{"point_time": iso_offset(g, 0), "value": "NaN"}, {"point_time": iso_offset(g, 0), "value": 900.0},
                {"point_time": "soon", "value": None}, {"value": 1e308}]
        return jresp(200, {"data": data, "meta": {"data_point_period_seconds": -300, "region": 42}})
    if endpoint == "aemo_5min":
        e = aemo_latest_end(now)
        rows = [dict(aemo_row("NSW1", e, "ACTUAL"), RRP="NaN"),
                aemo_row("NSW1", e, "ACTUAL"), aemo_row("NSW1", e, "ACTUAL"),
                dict(aemo_row("NSW1", e - 300, "ACTUAL"), SETTLEMENTDATE="2025-13-45T99:99:00"),
                dict(aemo_row("NSW1", e - 150, "ACTUAL"), RRP=1e9),
                {"REGIONID": "NSW1", "PERIODTYPE": "ACTUAL"}]
        return jresp(200, {"5MIN": rows})
    if endpoint == "aemo_summary":
        return jresp(200, {"ELEC_NEM_SUMMARY": [{"SETTLEMENTDATE": "never", "REGIONID": "NSW1", "PRICE": "NaN"}]})
    if endpoint == "energycharts_price":
        base = now // 900 * 900
        return jresp(200, {"license_info": EC_LICENSE, "unix_seconds": [base + 900, base, base, "x"],
                           "price": [1e300, "NaN", 50.0], "unit": "EUR / MWh", "deprecated": False})
    if endpoint == "octopus_account":
        return jresp(200, {"number": OCTOPUS_ACCOUNT, "properties": [{"electricity_meter_points": [
            {"mpan": "1200023305967", "agreements": [
                {"tariff_code": "NOT-A-TARIFF", "valid_from": "2025-02-15T00:00:00Z", "valid_to": "2024-01-01T00:00:00Z"},
                {"valid_from": "yesterday"}], "is_export": "maybe"}]}]})
    if endpoint == "kraken_graphql":
        return jresp(200, {"data": {"obtainKrakenToken": {"token": "not-a-jwt", "refreshToken": 12,
                                                           "refreshExpiresIn": "soon", "payload": {"exp": "NaN"}}}})
    if endpoint == "watttime_login":
        return jresp(200, {"token": 12345})
    return jresp(200, {"garbage": True, "value": "NaN"})


def graphql_error_answer(endpoint, req, fault):
    code = fault.get("code") or ("KT-CT-1139" if endpoint == "kraken_graphql" else "UNAUTHENTICATED")
    if endpoint == "kraken_graphql":
        return jresp(200, kraken_fault_body(req, code, fault.get("message")))
    return jresp(200, tibber_fault_body(code, fault.get("message")))


def fault_answer(fault, endpoint, req):
    """The answer an injected fault gives (for kinds that answer)."""
    kind = fault["kind"]
    if kind == "status":
        st = int(fault["status"])
        if "body" in fault:
            b = fault["body"]
            if isinstance(b, (dict, list)):
                r = Resp(st, json.dumps(b))
            else:
                r = Resp(st, str(b), fault.get("content_type") or (
                    "application/json" if str(b).lstrip()[:1] in ("{", "[") else "text/plain; charset=utf-8"))
        else:
            r = default_status_answer(endpoint, st)
        if fault.get("retry_after") is not None:
            r.headers.append(("Retry-After", str(fault["retry_after"])))
        return r
    if kind == "invalid_json":
        return Resp(200, '{"results": [{"value_inc_vat": 12.3, "valid_from": "2026-', "application/json")
    if kind == "html":
        st = int(fault.get("status", 403))
        return Resp(st, CLOUDFRONT_403 if st == 403 else html_page(st), "text/html")
    if kind == "empty":
        return empty_answer(endpoint, req)
    if kind == "garbage":
        return garbage_answer(endpoint, req)
    if kind == "graphql_error":
        return graphql_error_answer(endpoint, req, fault)
    if kind == "rate_limit":
        return rate_limit_answer(endpoint, req, fault)
    return None


# ---------------------------------------------------------------------------
# Control API under /_fake/.

def control(req):
    path = req.path.rstrip("/")
    try:
        body = json.loads(req.body.decode("utf-8") or "{}") if req.method == "POST" else None
    except ValueError:
        return jresp(400, {"error": "body is not JSON"})
    try:
        if path == "/_fake/calls" and req.method == "GET":
            return jresp(200, STATE.calls())
        if path == "/_fake/reset" and req.method == "POST":
            STATE.reset()
            return jresp(200, {"ok": True})
        if path == "/_fake/fault" and req.method == "POST":
            STATE.add_fault(body)
            return jresp(200, {"ok": True, "faults": STATE.pending_faults()})
        if path == "/_fake/faults" and req.method == "GET":
            return jresp(200, STATE.pending_faults())
        if path == "/_fake/config" and req.method == "POST":
            return jresp(200, STATE.set_config(body))
        if path == "/_fake/config" and req.method == "GET":
            with STATE.lock:
                return jresp(200, json.loads(json.dumps(STATE.config)))
        if path == "/_fake/now" and req.method == "GET":
            now = CLOCK.now()
            return jresp(200, {"now": iso_ms_z(now), "unix": now, "speed": CLOCK.speed,
                               "simulated": CLOCK.simulated(),
                               "clock_spec": "%s,%s" % (iso_ms_z(now), repr(CLOCK.speed))})
        if path == "/_fake/requests" and req.method == "GET":
            return jresp(200, STATE.recent(req.param("endpoint")))
    except (FakeError, TypeError, ValueError, KeyError) as e:
        return jresp(400, {"error": str(e)})
    return jresp(404, {"error": "no such control endpoint"})


# ---------------------------------------------------------------------------
# HTTP server.

CANNED_DIR = None
ACCESS_LOG = None
ACCESS_LOG_LOCK = threading.Lock()
MAX_BODY = 1 << 20


def access_log(line):
    if ACCESS_LOG is None:
        return
    with ACCESS_LOG_LOCK:
        ACCESS_LOG.write(line + "\n")
        ACCESS_LOG.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def date_time_string(self, timestamp=None):
        # The Date header follows the simulated clock, like every time here.
        return super().date_time_string(CLOCK.now() if timestamp is None else timestamp)

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, socket.timeout, OSError):
            pass

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def send(self, resp, truncate=False):
        body = resp.body if self.command != "HEAD" else b""
        self.send_response(resp.status, HTTP_REASONS.get(resp.status))
        self.send_header("Content-Type", resp.ctype)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers:
            self.send_header(k, v)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def dispatch(self):
        started = time.monotonic()
        split = urlsplit(self.path)
        path, query = split.path, split.query
        try:
            body = self.read_body()
        except ValueError:
            self.send(Resp(413, "Payload Too Large", "text/plain"))
            self.close_connection = True
            return
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        req = Req(self.command, path, query, self.headers, body, host)
        if path.startswith("/_fake/"):
            self.send(control(req))
            return
        endpoint, handler = route(self.command, path)
        STATE.count(endpoint)
        text = path + ("?" + query if query else "") + " " + body.decode("utf-8", "replace")
        fault = STATE.take_fault(endpoint, text)
        status, size, kind = 0, 0, fault["kind"] if fault else "-"
        recorded = False

        def record(status):
            # Before the answer goes out: a client that has its answer and
            # then asks /_fake/requests must find this request there.
            STATE.record({"t": iso_ms_z(CLOCK.now()), "endpoint": endpoint, "method": self.command,
                          "path": path + ("?" + query if query else ""), "status": status,
                          "fault": fault and fault["kind"],
                          "user_agent": self.headers.get("User-Agent"),
                          "authorization": (self.headers.get("Authorization") or "").split(" ")[0] or None,
                          "body": body[:4000].decode("utf-8", "replace") if body else None})
        try:
            if fault and fault["kind"] == "close":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault and fault["kind"] == "slow":
                time.sleep(float(fault["delay_s"]))
            resp = fault_answer(fault, endpoint, req) if fault else None
            if resp is None:
                resp = canned(endpoint) or handler(req)
            status, size = resp.status, len(resp.body)
            record(status)
            recorded = True
            self.send(resp, truncate=bool(fault and fault["kind"] == "truncate"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            status = 500
            try:
                self.send(Resp(500, "fake upstream bug: see its stderr", "text/plain"))
            except OSError:
                self.close_connection = True
        finally:
            now = CLOCK.now()
            if not recorded:
                record(status)
            access_log('%s %s "%s %s %s" %d %d %s %s %.1fms' % (
                iso_ms_z(now), self.client_address[0], self.command, self.path, self.request_version, status,
                size, endpoint, kind, (time.monotonic() - started) * 1000))


def canned(endpoint):
    """A body from --data DIR/<endpoint>.json, served verbatim."""
    if CANNED_DIR is None:
        return None
    p = os.path.join(CANNED_DIR, endpoint + ".json")
    try:
        with open(p, "rb") as f:
            return Resp(200, f.read())
    except OSError:
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


def main(argv=None):
    global CANNED_DIR, ACCESS_LOG
    ap = argparse.ArgumentParser(description="Fake upstream APIs for ratepool tests (see README.md).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--data", help="directory of canned bodies: <endpoint>.json served verbatim")
    ap.add_argument("--log", help="access log file, one line per request")
    args = ap.parse_args(argv)
    CANNED_DIR = args.data
    if args.log:
        ACCESS_LOG = open(args.log, "a", buffering=1)
    threading.stack_size(1 << 20)
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("listening %s:%d" % (args.host, port), flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
