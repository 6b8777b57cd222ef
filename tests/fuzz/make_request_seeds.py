"""Turns the request fixtures (tests/data/requests/*.json) into seeds for
fuzz_request: one flag byte, the topic, '\n', the payload (see
tests/fuzz/fuzz_request.c).

    python3 tests/fuzz/make_request_seeds.py OUTDIR
"""
import glob
import json
import os
import sys


def payload_bytes(case):
    if "payload_hex" in case:
        return bytes.fromhex(case["payload_hex"])
    p = case.get("payload")
    if p is None:
        data = b""
    elif isinstance(p, str):
        data = p.encode()
    else:
        data = json.dumps(p).encode()
    fill = case.get("payload_fill")
    if fill:
        data = b'{"pad":"' + b"x" * max(0, fill - 10) + b'"}'
    return data


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "requests")
    n = 0
    for path in sorted(glob.glob(os.path.join(root, "*.json"))):
        with open(path) as f:
            doc = json.load(f)
        for case in doc.get("cases", []):
            flags = 0
            if case.get("response_topic"):
                flags |= 0x01
            if case.get("prefix") == "home/ratepool":
                flags |= 0x04
            flags |= 0x02  # the default limits, as the fixtures assume
            topic = case.get("topic", "").encode()
            seed = bytes([flags]) + topic + b"\n" + payload_bytes(case)
            name = "%s-%s" % (os.path.splitext(os.path.basename(path))[0], case.get("name", n))
            with open(os.path.join(out, name), "wb") as f:
                f.write(seed)
            n += 1
    print("fuzz: %d request seeds in %s" % (n, out))


if __name__ == "__main__":
    main()
