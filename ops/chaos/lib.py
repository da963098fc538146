"""What every chaos scenario shares: brokers (through ops/broker), darkroomd workers, a producer and an
event collector over pika (Debian's python3-pika), the job accounting and the docs/reliability.md table.

Loopback only: every broker listens on 127.0.0.1, every worker and client connects there."""
import datetime
import hashlib
import json
import os
import signal
import subprocess
import threading
import time

import pika
import pika.data

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STATE = os.environ.get("CHAOS_STATE", os.path.join(TOP, ".state", "chaos"))
BIN = os.environ.get("DARKROOM_BIN") or os.path.join(TOP, ".build", "debug")
PORT = int(os.environ.get("CHAOS_BROKER_PORT", "5683"))
CLUSTER_PORTS = [int(p) for p in os.environ.get("CHAOS_CLUSTER_PORTS", "5684,5685,5686").split(",")]
NS = "darkroom"


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def wait_for(predicate, timeout, step=0.05):
    """Polls `predicate` until it is true or `timeout` seconds passed; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


# ---------------------------------------------------------------------------------------------- broker

class Broker:
    """One RabbitMQ node of ops/broker, with its own port, state folder and (shared for a cluster) HOME."""

    def __init__(self, port, state, home=None):
        self.port, self.state, self.home = port, state, home
        self.node = f"darkroom-{port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/"

    def env(self):
        env = dict(os.environ, DARKROOM_BROKER_PORT=str(self.port), DARKROOM_BROKER_STATE=self.state)
        if self.home:
            env["DARKROOM_BROKER_HOME"] = self.home
        return env

    def _broker(self, *args, check=True, timeout=180):
        r = subprocess.run([os.path.join(TOP, "ops", "broker"), *args], env=self.env(), capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"ops/broker {' '.join(args)} (port {self.port}) failed: {r.stderr.strip() or r.stdout.strip()}")
        return r

    def start(self):
        self._broker("start")

    def stop(self):
        self._broker("stop", check=False)

    def ctl(self, *args, check=True):
        return self._broker("ctl", *args, check=check).stdout

    def pid(self):
        try:
            return int(open(os.path.join(self.state, "rabbitmq.pid")).read().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill9(self):
        """kill -9 of the node's VM (the Erlang process in its pid file), then waits until it is gone."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"broker on port {self.port} has no pid file")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.running(), 30)

    def queue_depths(self, names):
        out = self.ctl("list_queues", "name", "messages", "-q")
        depths = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0] in names:
                depths[parts[0]] = int(parts[1])
        return depths


def fresh_broker(port=PORT):
    """A single node with empty state (a previous run's queues would skew the counts), under STATE/node-PORT."""
    b = Broker(port, os.path.join(STATE, f"node-{port}"))
    b.stop()
    subprocess.run(["rm", "-rf", b.state])
    b.start()
    return b


# ---------------------------------------------------------------------------------------------- worker

def write_config(path, urls, state_dir, queue_type="classic", extra=""):
    """A darkroomd config for the chaos runs: the shipped tiny-shapes model, classes tiny (32x32) and small
    (up to 64x64), text logs."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""namespace = "{NS}"
queue_type = "{queue_type}"
state_dir = "{state_dir}"
cache_dir = "{state_dir}/../cache"
models = ["tiny-shapes"]
default_model = "tiny-shapes"
model_dir = "{TOP}/models"

[broker]
urls = [{", ".join(json.dumps(u) for u in urls)}]
heartbeat = 10
reconnect_max_backoff = 2

[classes.tiny]
max_pixels = 1024
max_batch = 8
batch_window_ms = 100
prefetch = 16

[classes.small]
max_pixels = 4096
max_batch = 4
batch_window_ms = 100
prefetch = 8

[worker]
consume = ["tiny", "small"]
drain_deadline = 5
{extra}
[log]
format = "text"
level = "info"
""")
    return path


class Worker:
    """One darkroomd process; its log is appended to across restarts (each start is marked)."""

    def __init__(self, name, config, folder):
        self.name, self.config = name, config
        self.log_path = os.path.join(folder, f"{name}.log")
        self.proc = None
        self.starts = 0
        self.crashes = []          # exit codes of exits the harness did not cause

    def start(self, wait_ready=True, timeout=120):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        logf = open(self.log_path, "ab")
        logf.write(f"=== chaos: start {self.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
        logf.flush()
        env = dict(os.environ, DARKROOM_WORKER_ID=f"{self.name}-{self.starts + 1}")
        env.pop("DARKROOM_BROKER_URLS", None)
        self.proc = subprocess.Popen([os.path.join(BIN, "darkroomd"), "--config", self.config], stdout=logf,
                                     stderr=subprocess.STDOUT, env=env)
        logf.close()
        self.starts += 1
        if wait_ready and not wait_for(lambda: "event=ready" in self.log_since(offset) or self.proc.poll() is not None, timeout):
            raise RuntimeError(f"{self.name} did not become ready in {timeout} s; see {self.log_path}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start; see {self.log_path}")

    def log_since(self, offset=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_text(self):
        return self.log_since(0)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check(self):
        """Records an exit the harness did not cause (a crash)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.crashes.append(self.proc.returncode)
            self.proc = None
            return False
        return True

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self, timeout=30):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.returncode not in (0, -signal.SIGTERM):
                self.crashes.append(self.proc.returncode)
        self.proc = None

    def rss_kb(self):
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except (OSError, AttributeError):
            pass
        return None


# ---------------------------------------------------------------------------------------------- AMQP field tables

class Raw:
    """A field-table value written as given: `tag` (one byte) then `payload`; lets the malformed scenario send
    every AMQP 0-9-1 field type (pika writes only some of them)."""

    def __init__(self, tag, payload):
        self.tag, self.payload = tag, payload


_encode_value = pika.data.encode_value


def _encode_value_raw(pieces, value):
    if isinstance(value, Raw):
        pieces.append(value.tag + value.payload)
        return 1 + len(value.payload)
    return _encode_value(pieces, value)


pika.data.encode_value = _encode_value_raw


# ---------------------------------------------------------------------------------------------- clients

def connect(urls, timeout=30):
    """A BlockingConnection to the first of `urls` that answers, trying them in turn until `timeout`."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        for url in urls:
            try:
                p = pika.URLParameters(url)
                p.socket_timeout = 5
                p.blocked_connection_timeout = 30
                p.heartbeat = 30
                return pika.BlockingConnection(p)
            except Exception as e:     # noqa: BLE001 — any failure means "try the next node"
                last = e
        time.sleep(0.5)
    raise RuntimeError(f"no broker answered at {urls}: {last!r}")


def declare_reply_queue(urls, name, quorum=False, arguments=None):
    conn = connect(urls)
    ch = conn.channel()
    args = dict(arguments or {})
    if quorum:
        args["x-queue-type"] = "quorum"
    ch.queue_declare(queue=name, durable=True, arguments=args)
    ch.queue_purge(name)
    conn.close()


def purge(urls, *queues):
    conn = connect(urls)
    ch = conn.channel()
    for q in queues:
        try:
            ch.queue_purge(q)
        except pika.exceptions.ChannelClosedByBroker:
            ch = conn.channel()
    conn.close()


class Collector(threading.Thread):
    """Consumes one reply queue (manual acks, reconnecting through `urls`) and records every event by job id.
    A broker redelivery of an event it already has (same job, kind, body, redelivered flag) is not counted
    twice: only the worker's own repeats count."""

    def __init__(self, urls, queue):
        super().__init__(daemon=True)
        self.urls, self.queue = urls, queue
        self.lock = threading.Lock()
        self.events = {}          # job id -> [(kind, monotonic time, body bytes, headers)]
        self.seen = set()
        self.reconnects = 0
        self.first_event_after = []   # monotonic times of events, for "time to resume"
        self.last_event_at = 0.0
        self.stopping = threading.Event()
        self.connected = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                conn = connect(self.urls, timeout=120)
                ch = conn.channel()
                ch.basic_qos(prefetch_count=500)
                self.connected.set()
                for method, props, body in ch.consume(self.queue, inactivity_timeout=0.2):
                    if self.stopping.is_set():
                        break
                    if method is None:
                        continue
                    self._record(method, props, body)
                    ch.basic_ack(method.delivery_tag)
                try:
                    conn.close()
                except Exception:      # noqa: BLE001
                    pass
            except Exception:          # noqa: BLE001 — the broker went away: reconnect
                self.connected.clear()
                if self.stopping.is_set():
                    break
                self.reconnects += 1
                time.sleep(0.5)

    def _record(self, method, props, body):
        h = props.headers or {}
        kind = h.get("darkroom-event")
        job = props.correlation_id or h.get("darkroom-job")
        key = (job, kind, h.get("darkroom-index"), hashlib.sha1(body).hexdigest())
        now = time.monotonic()
        with self.lock:
            if key in self.seen and method.redelivered:
                return
            self.seen.add(key)
            self.events.setdefault(job, []).append((kind, now, body, h))
            self.last_event_at = now

    def stop(self):
        self.stopping.set()
        self.join(10)

    def kinds(self, job):
        with self.lock:
            return [e[0] for e in self.events.get(job, [])]

    def terminals(self, job):
        with self.lock:
            return [e for e in self.events.get(job, []) if e[0] in ("completed", "failed")]

    def count_terminal(self, jobs):
        with self.lock:
            return sum(1 for j in jobs if any(e[0] in ("completed", "failed") for e in self.events.get(j, [])))

    def events_since(self, t):
        with self.lock:
            return [(j, e) for j, evs in self.events.items() for e in evs if e[1] >= t]


class Producer:
    """Publishes with publisher confirms (mandatory), reconnecting through `urls`; a publish that was not
    confirmed is published again (same job id) and counted, as a careful producer would."""

    def __init__(self, urls):
        self.urls = urls
        self.conn = self.ch = None
        self.reconnects = 0
        self.republished = 0
        self.errors = []          # (time, repr) of what the producer saw
        self.max_confirm_s = 0.0
        self.published = 0

    def _channel(self):
        if self.ch is None or not self.ch.is_open:
            try:
                if self.conn is not None and self.conn.is_open:
                    self.conn.close()
            except Exception:          # noqa: BLE001
                pass
            self.conn = connect(self.urls, timeout=300)
            self.ch = self.conn.channel()
            self.ch.confirm_delivery()
        return self.ch

    def publish(self, exchange, routing_key, body, properties, attempts=100):
        for attempt in range(attempts):
            if attempt:
                self.republished += 1
            try:
                ch = self._channel()
                t0 = time.monotonic()
                ch.basic_publish(exchange=exchange, routing_key=routing_key, body=body, properties=properties,
                                 mandatory=True)
                self.max_confirm_s = max(self.max_confirm_s, time.monotonic() - t0)
                self.published += 1
                return True
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as e:
                self.errors.append((time.time(), type(e).__name__))
                time.sleep(0.2)
            except Exception as e:     # noqa: BLE001 — connection or channel lost: reconnect, publish again
                self.errors.append((time.time(), f"{type(e).__name__}: {str(e)[:120]}"))
                self.ch = None
                self.reconnects += 1
                time.sleep(0.3)
        return False

    def job(self, job, reply_to, size_class, priority=None, headers=None):
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, reply_to=reply_to,
                                     correlation_id=job["id"], message_id=job["id"], priority=priority,
                                     headers=headers)
        return self.publish(f"{NS}.jobs", size_class, json.dumps(job).encode(), props)

    def cancel(self, job_id):
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        return self.publish(f"{NS}.control", "", json.dumps({"v": 1, "cancel": job_id}).encode(), props)

    def close(self):
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:              # noqa: BLE001
            pass


LABELS = [f"{c} {s}" for c in ("red", "yellow", "green", "blue", "purple", "white")
          for s in ("circle", "square", "triangle", "ring")]


def mixed_job(rng, job_id, steps=(2, 6)):
    """A quick job of a random class: tiny (32x32) or small (64x64, 64x32), 1-2 images."""
    size = rng.choice([(32, 32), (32, 32), (64, 64), (64, 32)])
    job = {"v": 1, "id": job_id, "prompt": rng.choice(LABELS), "width": size[0], "height": size[1],
           "steps": rng.randint(*steps), "seed": rng.randrange(2**32), "count": rng.choice([1, 1, 2])}
    return job, ("tiny" if size == (32, 32) else "small")


def account(collector, jobs):
    """Per job: exactly one terminal event? Returns (lost, duplicates, completed, failed ids)."""
    lost, dups, completed, failed = [], [], 0, []
    for j in jobs:
        t = collector.terminals(j)
        if not t:
            lost.append(j)
            continue
        if len(t) > 1:
            dups.append(j)
        if t[0][0] == "completed":
            completed += 1
        else:
            failed.append((j, t[0][2][:200].decode("utf-8", "replace")))
    return lost, dups, completed, failed


# ---------------------------------------------------------------------------------------------- report

def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    except (OSError, StopIteration):
        isa = "?"
    return f"{model}, {os.cpu_count()} CPUs, {isa}"


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


REPORT = os.environ.get("CHAOS_REPORT") or os.path.join(TOP, "docs", "reliability.md")
TABLE_START = "<!-- chaos table: rows rewritten by ops/chaos/run -->"
TABLE_END = "<!-- end of chaos table -->"
HEADER = ("| scenario | result | figures | date (UTC) | machine | command |\n"
          "| --- | --- | --- | --- | --- | --- |\n")


def write_row(scenario, passed, figures, load_before):
    """Rewrites this scenario's row in docs/reliability.md's table (other rows are kept)."""
    text = open(REPORT).read() if os.path.exists(REPORT) else ""
    if TABLE_START not in text:
        raise RuntimeError(f"{REPORT} has no chaos table marker {TABLE_START!r}")
    head, rest = text.split(TABLE_START, 1)
    body, tail = rest.split(TABLE_END, 1)
    rows = [l for l in body.strip().splitlines() if l.startswith("| ") and not l.startswith("| scenario")
            and not l.startswith("| ---")]
    rows = [r for r in rows if not r.startswith(f"| {scenario} |")]
    knobs = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                     if k.startswith(scenario.upper() + "_") or k == "CHAOS_SEED")
    command = (knobs + " " if knobs else "") + os.environ.get("CHAOS_COMMAND", f"ops/chaos/run {scenario}")
    load = f"load {load_before} at start, {loadavg()} at end"
    row = (f"| {scenario} | {'passed' if passed else '**failed**'} | {figures.replace('|', '/')} | "
           f"{datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M')} | {machine()}; {load} | `{command}` |")
    rows.append(row)
    order = ["kills", "broker", "cluster", "malformed", "faults", "soak"]
    rows.sort(key=lambda r: order.index(r.split(" | ")[0][2:]) if r.split(" | ")[0][2:] in order else 99)
    with open(REPORT, "w") as f:
        f.write(head + TABLE_START + "\n" + HEADER + "\n".join(rows) + "\n" + TABLE_END + tail)


class Result:
    def __init__(self, scenario):
        self.scenario = scenario
        self.checks = []          # (name, ok, detail)
        self.figures = []
        self.cleanup = []         # callables run at the end, last first (workers, collectors, brokers)
        self.load_before = loadavg()

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), detail))
        log(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail else ""))
        return ok

    def figure(self, text):
        self.figures.append(text)
        log("figure: " + text)

    @property
    def passed(self):
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def finish(self):
        failed = "; ".join(f"FAILED {name}: {detail[:200]}" for name, ok, detail in self.checks if not ok)
        write_row(self.scenario, self.passed, "; ".join(self.figures + ([failed] if failed else [])), self.load_before)
        failed = [c for c in self.checks if not c[1]]
        log(f"{self.scenario}: {len(self.checks) - len(failed)} of {len(self.checks)} checks passed")
        return 0 if self.passed else 1


class Setup:
    """What a single-node scenario starts: a fresh broker on PORT, `n_workers` darkroomd processes sharing
    one config (and state dir), a durable reply queue and its collector; all stopped by the scenario's cleanup."""

    def __init__(self, r, name, n_workers=1, state_dir=None):
        self.folder = os.path.join(STATE, name)
        if state_dir is None:
            subprocess.run(["rm", "-rf", self.folder])
        self.broker = fresh_broker()
        r.cleanup.append(self.broker.stop)
        self.urls = [self.broker.url]
        self.config = write_config(os.path.join(self.folder, "darkroom.toml"), self.urls,
                                   state_dir or os.path.join(self.folder, "state"))
        self.workers = [Worker(f"w{i + 1}", self.config, self.folder) for i in range(n_workers)]
        r.cleanup.append(lambda: [w.stop() for w in self.workers])
        for w in self.workers:
            w.start()
        self.worker = self.workers[0]
        self.reply = f"chaos.reply.{name}"
        declare_reply_queue(self.urls, self.reply)
        self.collector = Collector(self.urls, self.reply)
        self.collector.start()
        r.cleanup.append(self.collector.stop)
        self.collector.connected.wait(30)
