"""malformed: 10,000 messages at full speed into the job queue of one worker -- random bytes, mutated valid
jobs, invalid UTF-8, deep nesting, huge numbers, 16 MiB bodies, wrong content types, odd headers (every AMQP
field-table type, empty keys, nested tables, arrays, byte arrays, decimals, timestamps, void) and properties,
missing or empty reply_to -- interleaved with valid jobs (1 in 40).  Checks: 0 crashes and 0 reconnects;
every malformed message answered `failed` or dead-lettered with a reason; every valid job completed; RSS
growth once warm (after the first 1,000 answers) <= 10%.  Environment: MALFORMED_MESSAGES (10000), CHAOS_SEED.

Each message carries correlation_id m-NNNNN, which every event and every dead-letter copy echoes; a message
whose properties the broker itself refuses (it closes the connection: NaN floats, unknown field types, a bad
expiration) never reaches the worker and is counted apart."""
import json
import os
import random
import struct
import threading
import time

import pika

from lib import (NS, Producer, Raw, Result, Setup, connect, log, wait_for)

MIB = 1 << 20


def valid_job(rng, i):
    return {"v": 1, "id": f"m-{i:05d}", "prompt": rng.choice(["red circle", "blue square", "green ring"]),
            "width": 32, "height": 32, "steps": 1, "seed": rng.randrange(2**63)}


def every_field_type():
    """One entry of every field-table type RabbitMQ accepts (its 0-9-1 errata), edge values included."""
    return {
        "bool": Raw(b"t", b"\x01"), "i8": Raw(b"b", b"\x80"), "u8": Raw(b"B", b"\xff"),
        "i16": Raw(b"s", struct.pack(">h", -32768)), "u16": Raw(b"u", struct.pack(">H", 65535)),
        "i32": Raw(b"I", struct.pack(">i", -2**31)), "u32": Raw(b"i", struct.pack(">I", 2**32 - 1)),
        "i64": Raw(b"l", struct.pack(">q", -2**63)), "u64": Raw(b"L", struct.pack(">Q", 2**64 - 1)),
        "f32": Raw(b"f", struct.pack(">f", 3.4e38)), "f64": Raw(b"d", struct.pack(">d", -0.0)),
        "decimal": Raw(b"D", b"\xff" + struct.pack(">i", -2**31)), "decimal0": Raw(b"D", b"\x00" + struct.pack(">i", 7)),
        "longstr-not-utf8": Raw(b"S", struct.pack(">I", 4) + b"\xff\xfe\xc0\xaf"), "longstr-empty": "",
        "bytes": Raw(b"x", struct.pack(">I", 3) + b"\x00\xff\x7f"), "bytes-empty": b"",
        "timestamp": Raw(b"T", struct.pack(">Q", 4102444800)), "timestamp0": Raw(b"T", struct.pack(">Q", 0)),
        "void": None, "array-empty": [], "table-empty": {},
        "array": [1, "a", None, b"\x00", [], {"k": [{"deep": None}]}, Raw(b"D", b"\x02" + struct.pack(">i", 12345))],
        "nested": {"a": {"b": {"c": {"d": {"e": [1, 2, {"f": True}]}}}}},
        "k" * 128: 1, "darkroom-event": "completed", "darkroom-job": "someone-else",
    }


def odd_headers(rng):
    choice = rng.randrange(8)
    if choice == 0:
        return every_field_type(), "every field type"
    if choice == 1:
        return {"": 1}, "empty key"
    if choice == 2:
        return {"k": {"": Raw(b"V", b"")}}, "empty key nested in a table"
    if choice == 3:
        return {"a": [{"": "x"}]}, "empty key in a table inside an array"
    if choice == 4:
        return {f"h{j}": j for j in range(rng.choice([500, 3000]))}, "thousands of headers"
    if choice == 5:
        return {"x" * 255: "longest short-string key"}, "255-character key"
    if choice == 6:
        return {"x-death": "not a list", "CC": ["nowhere"], "x-delay": -1}, "headers RabbitMQ reads itself"
    deep = {"leaf": 1}
    for _ in range(rng.choice([40, 200])):
        deep = {"d": deep}
    return {"deep": deep}, "deeply nested tables"


def broker_refused_headers(rng):
    return rng.choice([{"nan": Raw(b"f", struct.pack(">f", float("nan")))}, {"inf": Raw(b"d", struct.pack(">d", float("inf")))},
                       {"unknown-type": Raw(b"Z", b"")}, {"U-short": Raw(b"U", b"\x00\x01")}])


def mutate(rng, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[pos] = rng.randrange(256)
        elif op == 1 and b:
            del b[pos]
        elif op == 2:
            b.insert(pos, rng.choice(b'{}[]":,\\0123456789-+eE.nulltruefalse \x00\xff'))
        elif op == 3 and b:
            j = rng.randrange(len(b))
            b[min(pos, j):min(pos, j)] = b[min(pos, j):max(pos, j)][:200]
        elif op == 4:
            b = bytearray(data.replace(b'"steps": 1', rng.choice([b'"steps": "1"', b'"steps": 1.0', b'"steps": -1',
                                                                 b'"steps": 1, "steps": 2', b'"steps": null, "sede": 1'])))
        else:
            b = b[:pos]
    return bytes(b)


def make(rng, i, reply):
    """(body, properties dict, category, expectation). expectation: completed | refused (failed or
    dead-lettered) | dead (dead-lettered: no reply_to) | any (one terminal event or a dead copy) | broker."""
    cid = f"m-{i:05d}"
    props = {"content_type": "application/json", "delivery_mode": 2, "reply_to": reply, "correlation_id": cid}
    job = valid_job(rng, i)
    valid = json.dumps(job).encode()
    if i % 40 == 0:
        return valid, props, "valid job", "completed"
    if i % 500 == 1:                                            # 16 MiB bodies, 20 in 10,000
        kind = (i // 500) % 3
        if kind == 0:
            return rng.randbytes(16 * MIB), props, "16 MiB random bytes", "refused"
        if kind == 1:
            return b'{"v":1,"prompt":"' + b"a" * (16 * MIB) + b'"}', props, "16 MiB prompt", "refused"
        return b"[" * (16 * MIB), props, "16 MiB of '['", "refused"
    c = rng.randrange(100)
    if c < 12:
        return rng.randbytes(rng.choice([0, 1, 7, 100, 4000])), props, "random bytes", "refused"
    if c < 30:
        return mutate(rng, valid), props, "mutated valid job", "any"
    if c < 38:
        bad = rng.choice([b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'\xf4\x90\x80\x80', b'\x80', b'\xe2\x82'])
        return valid.replace(b'circle', b'cir' + bad) .replace(b'square', bad + b'square').replace(b'ring', b'ri' + bad), \
            props, "invalid UTF-8", "refused"
    if c < 44:
        n = rng.choice([65, 100, 1000, 100000])
        return rng.choice([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n,
                           b'{"v":1,"prompt":' + b"[" * n + b"]" * n + b"}"]), props, "deep nesting", "refused"
    if c < 52:
        field = rng.choice(["seed", "steps", "width", "count", "v", "guidance"])
        value = rng.choice(["1e400", "9" * 1000, "-0", "18446744073709551616", "-1", "1.5", "1E2", "0x10", "NaN",
                            "Infinity", "-9223372036854775809", "1" + "0" * 310])
        body = valid.replace(f'"{field}": '.encode(), b'"__x": ') if field in job else valid
        body = body.rstrip(b"}") + f', "{field}": {value}}}'.encode()
        # -0 may read as 0, and 1.5 / 1E2 are numbers where a number is allowed (guidance): those may run
        lenient = value == "-0" or (field == "guidance" and value in ("1.5", "1E2"))
        return body, props, "huge or odd numbers", "any" if lenient else "refused"
    if c < 58:
        props["content_type"] = rng.choice(["text/plain", "application/xml", None, "application/json; charset=latin1",
                                            "", "\x00", "a" * 255])
        if rng.random() < 0.5:
            props["content_encoding"] = rng.choice(["gzip", "deflate", "x"])
        return valid, props, "wrong content type / encoding", "any"
    if c < 70:
        headers, what = odd_headers(rng)
        props["headers"] = headers
        empty_key = what.startswith("empty key")
        return valid, props, f"headers: {what}", "refused" if empty_key else "any"
    if c < 72:
        props["headers"] = broker_refused_headers(rng)
        return valid, props, "headers the broker refuses", "broker"
    if c < 80:
        which = rng.randrange(9)
        if which == 0:
            props["priority"] = 255
        elif which == 1:
            props["timestamp"] = rng.choice([0, 2**63 - 1])
        elif which == 2:
            props["message_id"] = rng.choice(["", "a" * 255, "../../etc", "id with spaces", "\u00e9\u4e2d"])
            body = json.loads(valid)
            del body["id"]
            return json.dumps(body).encode(), props, "odd message_id as job id", "any"
        elif which == 3:
            props["type"], props["app_id"], props["cluster_id"] = "x" * 255, "\x01", ""
        elif which == 4:
            props["delivery_mode"] = rng.choice([1, 0, 3])
            if props["delivery_mode"] != 1:
                return valid, props, "delivery_mode 0 or 3", "broker"
        elif which == 5:
            props["expiration"] = rng.choice(["1", "0"])
            return valid, props, "expiration 0/1 ms", "expired"
        elif which == 6:
            props["expiration"] = rng.choice(["abc", "-1", "1.5"])
            return valid, props, "invalid expiration", "broker"
        elif which == 7:
            props["user_id"] = "guest"
        else:
            props["reply_to"] = "no-such-queue-" + cid
            return valid, props, "reply_to naming no queue", "unanswerable"
        return valid, props, "odd properties", "any"
    if c < 90:
        del props["reply_to"]
        return (valid if rng.random() < 0.7 else rng.randbytes(50)), props, "missing reply_to", "dead"
    props["reply_to"] = ""
    return valid, props, "empty reply_to", "dead"


class RSSSampler(threading.Thread):
    def __init__(self, worker):
        super().__init__(daemon=True)
        self.worker, self.samples, self.stopping = worker, [], threading.Event()

    def run(self):
        while not self.stopping.wait(0.5):
            rss = self.worker.rss_kb()
            if rss:
                self.samples.append((time.monotonic(), rss))

    def stop(self):
        self.stopping.set()
        self.join(5)


def drain_dead(urls, expected, timeout=120):
    """Every copy in darkroom.dead: {correlation_id: reason} (darkroom-error, or RabbitMQ's x-death reason)."""
    dead = {}
    conn = connect(urls)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=50)
    end = time.monotonic() + timeout
    for method, props, body in ch.consume(f"{NS}.dead", inactivity_timeout=3):
        if method is None:
            if len(dead) >= expected or time.monotonic() > end:
                break
            continue
        h = props.headers or {}
        reason = h.get("darkroom-error")
        if reason is None and h.get("x-death"):
            reason = "x-death: " + str(h["x-death"][0].get("reason"))
        dead[props.correlation_id] = reason
        ch.basic_ack(method.delivery_tag)
    conn.close()
    return dead


def main(r: Result):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    n = int(os.environ.get("MALFORMED_MESSAGES", "10000"))
    s = Setup(r, "malformed")
    urls, worker, reply, collector, folder = s.urls, s.worker, s.reply, s.collector, s.folder
    sampler = RSSSampler(worker)
    sampler.start()
    r.cleanup.append(sampler.stop)

    rss_start = worker.rss_kb()
    producer = Producer(urls)
    sent = {}            # cid -> (category, expectation)
    categories = {}
    t0 = time.monotonic()
    for i in range(n):
        body, props, category, expect = make(rng, i, reply)
        cid = props["correlation_id"]
        ok = producer.publish(f"{NS}.jobs", "tiny", body, pika.BasicProperties(**props), attempts=1)
        if not ok:
            expect = "broker" if expect == "broker" else "unexpected-refusal"
        elif expect == "broker":
            expect = "any"          # the broker let it through after all: the worker must answer it
        sent[cid] = (category, expect)
        categories[category] = categories.get(category, 0) + 1
    publish_s = time.monotonic() - t0
    producer.close()
    log(f"published {n} messages in {publish_s:.0f} s ({producer.reconnects} connections the broker closed)")

    answerable = [c for c, (_, e) in sent.items() if e in ("completed", "refused", "any")]
    warm = []
    warm_after = min(1000, len(answerable) // 5)

    def progress():
        answered = collector.count_terminal(answerable)
        if answered >= warm_after and not warm:
            warm.append(worker.rss_kb())
        return answered >= len(answerable)

    finished = wait_for(progress, 1200, step=0.5)
    time.sleep(3)
    rss_end = worker.rss_kb()
    expected_dead = sum(1 for _, e in sent.values() if e in ("dead", "expired", "unanswerable"))
    poison = sum(1 for _, e in sent.values() if e == "refused")
    dead = drain_dead(urls, expected_dead + poison // 2)

    problems, by_outcome = [], {}
    for cid, (category, expect) in sent.items():
        t = collector.terminals(cid)
        kinds = [e[0] for e in t]
        if expect in ("broker", "unexpected-refusal"):
            outcome = "refused by the broker"
            if expect == "unexpected-refusal":
                problems.append((cid, category, "the broker refused it"))
        elif expect == "completed":
            outcome = "completed" if kinds == ["completed"] else f"{kinds}"
            if kinds != ["completed"]:
                problems.append((cid, category, f"valid job got {kinds}"))
        elif expect == "refused":
            outcome = "failed" if kinds == ["failed"] else f"{kinds}"
            if kinds != ["failed"] and not dead.get(cid):
                problems.append((cid, category, f"malformed job got {kinds}, dead: {dead.get(cid)}"))
        elif expect == "any":
            outcome = kinds[0] if len(kinds) == 1 else ("dead-lettered" if dead.get(cid) else f"{kinds}")
            if len(kinds) != 1 and not dead.get(cid):
                problems.append((cid, category, f"got {kinds}, dead: {dead.get(cid)}"))
        else:   # dead, expired, unanswerable: a dead-letter copy with a reason
            outcome = "dead-lettered" if dead.get(cid) else (f"{kinds[0]} (expired or not, in the worker)" if expect == "expired"
                                                             and kinds else f"{kinds} not dead-lettered")
            if not dead.get(cid) and not (expect == "expired" and kinds):
                problems.append((cid, category, f"expected a dead-letter copy with a reason, got {kinds}"))
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
    for p in problems[:20]:
        log(f"problem: {p}")

    reconnects = worker.log_text().count("broker connection lost")
    alive = worker.check()
    valid_n = sum(1 for _, e in sent.values() if e == "completed")
    valid_done = sum(1 for c, (_, e) in sent.items() if e == "completed" and collector.kinds(c).count("completed") == 1)
    rss_warm = warm[0] if warm else None
    rss_max = max((s for _, s in sampler.samples), default=0)
    growth = (rss_end / rss_warm - 1) * 100 if rss_warm and rss_end else float("nan")
    r.check("the worker never exited (0 crashes)", alive and not worker.crashes, f"{worker.crashes}")
    r.check("the worker kept its connection (0 reconnects)", reconnects == 0, f"{reconnects} 'connection lost' lines")
    r.check("every message answered failed / dead-lettered with a reason / completed as the contract says",
            finished and not problems, f"{len(problems)} problems, e.g. {problems[:3]}")
    r.check("every valid job completed", valid_done == valid_n, f"{valid_done} of {valid_n}")
    r.check("RSS growth once warm <= 10%", growth <= 10, f"{rss_warm} kB warm -> {rss_end} kB end ({growth:+.1f}%)")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(by_outcome.items(), key=lambda kv: -kv[1]))
    r.figure(f"{n} messages published in {publish_s:.0f} s ({len(categories)} kinds, {valid_n} valid jobs, "
             f"20 bodies of 16 MiB); outcomes: {outcomes}; dead-letter copies with a reason: "
             f"{sum(1 for v in dead.values() if v)}; {len(problems)} not answered as the contract says; worker: "
             f"{len(worker.crashes)} crashes, {reconnects} reconnects; RSS {rss_start // 1024} MiB at start, "
             f"{(rss_warm or 0) // 1024} MiB warm ({warm_after} answered), {rss_end // 1024} MiB at the end ({growth:+.1f}%), "
             f"peak {rss_max // 1024} MiB")
    with open(os.path.join(folder, "categories.json"), "w") as f:
        json.dump({"categories": categories, "outcomes": by_outcome, "problems": problems[:200]}, f, indent=1)
