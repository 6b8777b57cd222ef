"""mqtt5.py - a small MQTT client (5.0, or 3.1.1) on standard-library
sockets, for integration tests that need what the mosquitto command-line
clients cannot do: many requests per connection in flight at once, raw
payload bytes, arbitrary Response Topic / Correlation Data properties,
and the replies collected by correlation data.

Supported: CONNECT (clean start, no will), SUBSCRIBE (one filter per
call), PUBLISH QoS 0 and 1 both ways (incoming QoS 1 is acknowledged;
incoming QoS 2 is acknowledged with PUBREC/PUBCOMP), PINGREQ, DISCONNECT.
Every MQTT 5 property is decoded; encoding supports the ones a request
needs. Not supported: TLS, auth, sending QoS 2, topic aliases.

    c = MqttClient(port).connect()
    c.subscribe("replies/#", qos=1)
    c.publish("ratepool/request/aemo/NSW1", b"", qos=1,
              response_topic="replies/1", correlation=b"req-1")
    msg = c.wait_for(lambda m: m.correlation == b"req-1")
    print(msg.topic, msg.json())
    c.close()

A received message is an Message(topic, payload bytes, qos, retain,
props dict); props keys are the names in PROPS below (e.g.
"correlation_data", "response_topic", "user_property": [(k, v), ...]).
"""

import itertools
import json
import socket
import struct
import threading
import time

# Packet types.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

# MQTT 5 properties: id -> (name, type). Types: byte, u16, u32, varint,
# str (UTF-8 string), bin (binary data), pair (string pair).
PROPS = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROP_IDS = {name: (pid, kind) for pid, (name, kind) in PROPS.items()}


class MqttError(Exception):
    pass


# --- encoding -------------------------------------------------------------

def encode_varint(n):
    """Variable Byte Integer (1..4 bytes, at most 268,435,455)."""
    if n < 0 or n > 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def _bytes(v):
    return v if isinstance(v, (bytes, bytearray)) else str(v).encode("utf-8")


def encode_str(v):
    """UTF-8 string or binary data: 2-byte length + bytes. Takes str or
    bytes (bytes are sent as they are, even if not valid UTF-8)."""
    b = _bytes(v)
    if len(b) > 65535:
        raise ValueError("string longer than 65535 bytes")
    return struct.pack("!H", len(b)) + b


def encode_props(props):
    """props: dict name -> value (user_property: list of (k, v) pairs).
    Returns the property length varint followed by the properties."""
    body = bytearray()
    for name, value in (props or {}).items():
        if value is None:
            continue
        pid, kind = PROP_IDS[name]
        values = value if kind == "pair" else [value]
        for v in values:
            body.append(pid)
            if kind == "byte":
                body.append(v)
            elif kind == "u16":
                body += struct.pack("!H", v)
            elif kind == "u32":
                body += struct.pack("!I", v)
            elif kind == "varint":
                body += encode_varint(v)
            elif kind in ("str", "bin"):
                body += encode_str(v)
            else:  # pair
                body += encode_str(v[0]) + encode_str(v[1])
    return encode_varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + encode_varint(len(body)) + body


# --- decoding -------------------------------------------------------------

class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise MqttError("packet too short")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        n, mult = 0, 1
        for _ in range(4):
            b = self.byte()
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n
            mult *= 128
        raise MqttError("malformed variable byte integer")

    def bin(self):
        return bytes(self.take(self.u16()))

    def str(self):
        return self.bin().decode("utf-8", "replace")

    def rest(self):
        b = self.data[self.pos:]
        self.pos = len(self.data)
        return bytes(b)

    def props(self):
        end = self.varint()
        end += self.pos
        out = {}
        while self.pos < end:
            pid = self.varint()
            if pid not in PROPS:
                raise MqttError("unknown property 0x%02x" % pid)
            name, kind = PROPS[pid]
            if kind == "byte":
                v = self.byte()
            elif kind == "u16":
                v = self.u16()
            elif kind == "u32":
                v = self.u32()
            elif kind == "varint":
                v = self.varint()
            elif kind == "str":
                v = self.str()
            elif kind == "bin":
                v = self.bin()
            else:
                out.setdefault(name, []).append((self.str(), self.str()))
                continue
            out[name] = v
        if self.pos != end:
            raise MqttError("property length mismatch")
        return out


class Message:
    __slots__ = ("topic", "payload", "qos", "retain", "props", "t")

    def __init__(self, topic, payload, qos, retain, props):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.props = props
        self.t = time.monotonic()

    @property
    def correlation(self):
        return self.props.get("correlation_data")

    def text(self):
        return self.payload.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.payload)

    def __repr__(self):
        return "Message(%r, %r, qos=%d, retain=%s, props=%r)" % (self.topic, self.payload[:200], self.qos,
                                                                  self.retain, self.props)


class MqttClient:
    """One MQTT connection with a reader thread that collects every
    incoming PUBLISH. Thread-safe for publishing from several threads."""

    _ids = itertools.count(1)

    def __init__(self, port, host="127.0.0.1", client_id=None, version=5, keepalive=60):
        if version not in (4, 5):
            raise ValueError("version is 5 (MQTT 5) or 4 (MQTT 3.1.1)")
        self.host = host
        self.port = port
        self.version = version
        self.keepalive = keepalive
        self.client_id = client_id or "it-%d-%d" % (id(self) & 0xFFFF, next(self._ids))
        self.sock = None
        self.closed = threading.Event()
        self.close_reason = None
        self.connack = None  # (session_present, reason code, props)
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._msgs = []
        self._acks = {}  # packet id -> (type, reason codes)
        self._unacked = set()  # our QoS 1 PUBLISH ids awaiting PUBACK
        self._pid = itertools.count(1)
        self._pid_lock = threading.Lock()
        self._thread = None

    # --- connection ---

    def connect(self, timeout=5.0, clean=True, session_expiry=0):
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        var = encode_str("MQTT") + bytes([self.version, 0x02 if clean else 0]) + struct.pack("!H", self.keepalive)
        if self.version == 5:
            var += encode_props({"session_expiry_interval": session_expiry or None,
                                 "receive_maximum": 65535})
        self._send(packet(CONNECT, 0, var + encode_str(self.client_id)))
        self._thread = threading.Thread(target=self._reader, daemon=True, name="mqtt5-" + self.client_id)
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.connack is not None or self.closed.is_set(), timeout):
                raise MqttError("no CONNACK within %.1fs" % timeout)
        if self.connack is None:
            raise MqttError("connection closed before CONNACK: %s" % self.close_reason)
        if self.connack[1] != 0:
            raise MqttError("CONNACK refused: reason 0x%02x %r" % (self.connack[1], self.connack[2]))
        return self

    def close(self):
        """DISCONNECT (normal) and close the socket; safe to call twice."""
        if self.sock is None:
            return
        try:
            body = bytes([0]) + encode_varint(0) if self.version == 5 else b""
            self._send(packet(DISCONNECT, 0, body))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock = None

    def __enter__(self):
        return self if self.sock else self.connect()

    def __exit__(self, *exc):
        self.close()

    def _send(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def _next_pid(self):
        with self._pid_lock:
            while True:
                pid = next(self._pid) % 65536
                if pid and pid not in self._unacked and pid not in self._acks:
                    return pid

    # --- operations ---

    def subscribe(self, topic_filter, qos=1, timeout=5.0, no_local=False):
        """Subscribes one filter; returns the granted reason code (raises
        when the broker refused it)."""
        pid = self._next_pid()
        opts = qos | (0x04 if no_local and self.version == 5 else 0)
        body = struct.pack("!H", pid)
        if self.version == 5:
            body += encode_props({})
        body += encode_str(topic_filter) + bytes([opts])
        with self._cond:
            self._acks[pid] = None
        self._send(packet(SUBSCRIBE, 0x02, body))
        codes = self._wait_ack(pid, timeout, "SUBACK")
        if not codes or codes[0] >= 0x80:
            raise MqttError("SUBSCRIBE %r refused: %r" % (topic_filter, codes))
        return codes[0]

    def publish(self, topic, payload=b"", qos=0, retain=False, response_topic=None, correlation=None,
                props=None, wait=False, timeout=5.0):
        """Publishes one message. payload: bytes or str. MQTT 5 properties
        come from response_topic, correlation and props (a dict, see PROPS).
        QoS 1: with wait=True, waits for the PUBACK and returns its reason
        code; otherwise returns at once (flush() waits for all)."""
        if qos not in (0, 1):
            raise ValueError("qos 0 or 1")
        pid = self._next_pid() if qos else 0
        body = encode_str(topic)
        if qos:
            body += struct.pack("!H", pid)
        if self.version == 5:
            p = dict(props or {})
            if response_topic is not None:
                p["response_topic"] = response_topic
            if correlation is not None:
                p["correlation_data"] = _bytes(correlation)
            body += encode_props(p)
        elif response_topic is not None or correlation is not None or props:
            raise ValueError("properties need MQTT 5")
        body += _bytes(payload)
        if qos:
            with self._cond:
                # The broker's Receive Maximum: more QoS 1 PUBLISHes
                # unacknowledged than that is a protocol error.
                if not self._cond.wait_for(lambda: len(self._unacked) < self.receive_maximum()
                                           or self.closed.is_set(), timeout):
                    raise MqttError("no PUBACK within %.1fs (receive maximum reached)" % timeout)
                self._unacked.add(pid)
                if wait:
                    self._acks[pid] = None
        self._send(packet(PUBLISH, (qos << 1) | (1 if retain else 0), body))
        if qos and wait:
            codes = self._wait_ack(pid, timeout, "PUBACK")
            return codes[0] if codes else 0
        return None

    def receive_maximum(self):
        """How many QoS 1 PUBLISHes the broker takes unacknowledged."""
        if self.version == 5 and self.connack:
            return self.connack[2].get("receive_maximum", 65535)
        return 65535

    def flush(self, timeout=10.0):
        """Waits until every QoS 1 PUBLISH sent has its PUBACK."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._unacked or self.closed.is_set(), timeout):
                raise MqttError("%d PUBACKs missing after %.1fs" % (len(self._unacked), timeout))
            if self._unacked:
                raise MqttError("connection closed with %d PUBACKs missing" % len(self._unacked))

    def ping(self, timeout=5.0):
        """PINGREQ and wait for PINGRESP: everything sent before it has
        been read by the broker."""
        with self._cond:
            self._acks["ping"] = None
        self._send(packet(PINGREQ, 0, b""))
        self._wait_ack("ping", timeout, "PINGRESP")

    def _wait_ack(self, key, timeout, what):
        with self._cond:
            ok = self._cond.wait_for(lambda: self._acks.get(key) is not None or self.closed.is_set(), timeout)
            codes = self._acks.pop(key, None)
        if not ok:
            raise MqttError("no %s within %.1fs" % (what, timeout))
        if codes is None:
            raise MqttError("connection closed before %s: %s" % (what, self.close_reason))
        return codes

    # --- received messages ---

    def messages(self, topic=None):
        with self._cond:
            return [m for m in self._msgs if topic is None or m.topic == topic]

    def clear(self):
        with self._cond:
            self._msgs.clear()

    def wait_for(self, predicate=None, count=1, timeout=10.0):
        """Waits until `count` received messages satisfy predicate(msg);
        returns the first of them when count == 1, else the list. Raises
        TimeoutError otherwise."""
        def matching():
            return [m for m in self._msgs if predicate is None or predicate(m)]
        with self._cond:
            self._cond.wait_for(lambda: len(matching()) >= count or self.closed.is_set(), timeout)
            ms = matching()
        if len(ms) < count:
            raise TimeoutError("%d of %d MQTT message(s) after %.1fs%s" % (
                len(ms), count, timeout, " (connection closed: %s)" % self.close_reason
                if self.closed.is_set() else ""))
        return ms[0] if count == 1 else ms

    # --- reader thread ---

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by the broker")
            buf += chunk
        return bytes(buf)

    def _read_packet(self):
        first = self._recv_exact(1)[0]
        n, mult = 0, 1
        for _ in range(4):
            b = self._recv_exact(1)[0]
            n += (b & 0x7F) * mult
            if not b & 0x80:
                break
            mult *= 128
        else:
            raise MqttError("malformed remaining length")
        return first >> 4, first & 0x0F, self._recv_exact(n) if n else b""

    def _reader(self):
        try:
            while True:
                ptype, flags, body = self._read_packet()
                self._handle(ptype, flags, body)
        except (OSError, EOFError, MqttError, ValueError) as e:
            self.close_reason = str(e)
        finally:
            self.closed.set()
            with self._cond:
                self._cond.notify_all()

    def _handle(self, ptype, flags, body):
        r = _Reader(body)
        v5 = self.version == 5
        if ptype == CONNACK:
            sp = r.byte() & 1
            rc = r.byte()
            props = r.props() if v5 and r.pos < len(body) else {}
            with self._cond:
                self.connack = (sp, rc, props)
                self._cond.notify_all()
        elif ptype == PUBLISH:
            qos = (flags >> 1) & 3
            topic = r.str()
            pid = r.u16() if qos else 0
            props = r.props() if v5 else {}
            msg = Message(topic, r.rest(), qos, bool(flags & 1), props)
            if qos == 1:
                self._send(packet(PUBACK, 0, struct.pack("!H", pid)))
            elif qos == 2:
                self._send(packet(PUBREC, 0, struct.pack("!H", pid)))
            with self._cond:
                self._msgs.append(msg)
                self._cond.notify_all()
        elif ptype in (PUBACK, SUBACK, UNSUBACK):
            pid = r.u16()
            if ptype == PUBACK:
                codes = [r.byte()] if r.pos < len(body) else [0]
            else:
                if v5:
                    r.props()
                codes = list(r.rest())
            with self._cond:
                self._unacked.discard(pid)
                if pid in self._acks:
                    self._acks[pid] = codes
                self._cond.notify_all()
        elif ptype == PUBREL:
            pid = r.u16()
            self._send(packet(PUBCOMP, 0, struct.pack("!H", pid)))
        elif ptype == PINGRESP:
            with self._cond:
                if "ping" in self._acks:
                    self._acks["ping"] = [0]
                self._cond.notify_all()
        elif ptype == DISCONNECT:
            rc = r.byte() if r.pos < len(body) else 0
            props = r.props() if v5 and r.pos < len(body) else {}
            raise EOFError("DISCONNECT from the broker: reason 0x%02x %s" % (rc, props.get("reason_string", "")))
        else:
            raise MqttError("unexpected packet type %d" % ptype)
