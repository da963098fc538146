"""broker: 1 worker under steady load (a quick job every 0.5 s), 5 broker restarts (graceful `rabbitmqctl stop`, then kill -9 of the
node's VM, alternating) -> 0 lost; the time to resume measured (the broker's start command -> the worker's
"connected" line, and -> its first batch); after each restart a 200-step job must report progress and be cancelled.
Environment: BROKER_RESTARTS (5), CHAOS_SEED (1)."""
import os
import random
import threading
import time
import uuid

from lib import (Producer, Result, Setup, account, log, mixed_job, wait_for)


class Load(threading.Thread):
    """Publishes a quick job every `interval` seconds until stopped or `limit` jobs are out (its own
    connection, reconnecting)."""

    def __init__(self, urls, reply, rng, interval, prefix, limit=None):
        super().__init__(daemon=True)
        self.producer = Producer(urls)
        self.reply, self.rng, self.interval, self.prefix, self.limit = reply, rng, interval, prefix, limit
        self.jobs = []
        self.stopping = threading.Event()

    def run(self):
        i = 0
        while not self.stopping.is_set() and (self.limit is None or i < self.limit):
            job, cls = mixed_job(self.rng, f"{self.prefix}-{i:04d}")
            if self.producer.job(job, self.reply, cls):
                self.jobs.append(job["id"])
            i += 1
            self.stopping.wait(self.interval)
        self.producer.close()

    def stop(self):
        self.stopping.set()
        self.join(120)


def progress_and_cancel(producer, collector, reply, tag):
    """Publishes a 200-step job at priority 9, waits for its progress, cancels it, waits for failed/cancelled.
    Returns (seconds to the first progress, seconds from cancel to the terminal event, ok)."""
    job_id = f"long-{tag}-{uuid.uuid4().hex[:6]}"
    job = {"v": 1, "id": job_id, "prompt": "red circle", "width": 64, "height": 64, "steps": 200, "seed": 1, "count": 4}
    t0 = time.monotonic()
    producer.job(job, reply, "small", priority=9)
    if not wait_for(lambda: "progress" in collector.kinds(job_id), 180, step=0.1):
        return None, None, False, job_id
    t_progress = time.monotonic() - t0
    t1 = time.monotonic()
    producer.cancel(job_id)
    if not wait_for(lambda: collector.terminals(job_id), 120, step=0.1):
        return t_progress, None, False, job_id
    t_cancel = time.monotonic() - t1
    kind, _, body, _ = collector.terminals(job_id)[0]
    return t_progress, t_cancel, kind == "failed" and b'"cancelled"' in body, job_id


def main(r: Result):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    restarts = int(os.environ.get("BROKER_RESTARTS", "5"))
    s = Setup(r, "broker")
    broker, urls, worker, reply, collector = s.broker, s.urls, s.worker, s.reply, s.collector
    load = Load(urls, reply, rng, 0.5, "load")
    load.start()
    r.cleanup.append(load.stop)
    control = Producer(urls)

    long_jobs, resume, first_batch, progress_s, cancel_s, cancel_ok, startup = [], [], [], [], [], 0, []
    p, c, ok, jid = progress_and_cancel(control, collector, reply, "before")
    long_jobs.append(jid)
    r.check("before any restart: progress and cancel work", ok, f"progress {p or 0:.1f} s after submit, cancelled {c or 0:.1f} s after the cancel")
    for i in range(1, restarts + 1):
        time.sleep(rng.uniform(3, 8))
        mode = "graceful stop" if i % 2 else "kill -9"
        offset = len(worker.log_text().encode())
        log(f"restart {i}/{restarts}: {mode} ({len(load.jobs)} jobs published)")
        if i % 2:
            broker.stop()
        else:
            broker.kill9()
        time.sleep(rng.uniform(1, 3))
        # the broker takes connections before `rabbitmqctl wait` returns: time from the start command
        t_start = time.monotonic()
        up_at = []
        watcher = threading.Thread(target=lambda: up_at.append(
            wait_for(lambda: "event=broker_up" in worker.log_since(offset), 180, step=0.05) and time.monotonic()), daemon=True)
        watcher.start()
        broker.start()
        startup.append(time.monotonic() - t_start)
        watcher.join()
        up = bool(up_at and up_at[0])
        resume.append(up_at[0] - t_start if up else float("inf"))
        wait_for(lambda: "batch started" in worker.log_since(offset).split("event=broker_up", 1)[-1], 120, step=0.05)
        first_batch.append(time.monotonic() - t_start)
        p, c, ok, jid = progress_and_cancel(control, collector, reply, str(i))
        long_jobs.append(jid)
        cancel_ok += ok
        if p is not None:
            progress_s.append(p)
        if c is not None:
            cancel_s.append(c)
        r.check(f"after restart {i} ({mode}): worker reconnected, progress and cancel work", up and ok,
                f"broker start took {startup[-1]:.1f} s; the worker connected {resume[-1]:.1f} s and started a batch "
                f"{first_batch[-1]:.1f} s after the start command; progress {p or 0:.1f} s after submit, "
                f"failed/cancelled {c or 0:.1f} s after the cancel")
    load.stop()
    control.close()
    jobs = list(load.jobs)
    finished = wait_for(lambda: collector.count_terminal(jobs) >= len(jobs), 600, step=0.5)
    time.sleep(5)
    lost, dups, completed, failed = account(collector, jobs)
    long_lost, _, _, _ = account(collector, long_jobs)
    alive = worker.check()
    reconnects = worker.log_text().count("event=broker_up") - 1
    r.check("every load job answered (0 lost)", finished and not lost and not long_lost,
            f"{len(lost)} + {len(long_lost)} lost: {(lost + long_lost)[:5]}")
    r.check("every load job completed", completed == len(jobs), f"{completed} of {len(jobs)}; failed {failed[:3]}")
    r.check("the worker process never exited", alive and not worker.crashes, f"crashes {worker.crashes}")
    fmt = lambda xs: f"{min(xs):.1f}-{max(xs):.1f} s" if xs else "n/a"
    r.figure(f"{restarts} restarts ({(restarts + 1) // 2} graceful, {restarts // 2} kill -9) under {len(jobs)} jobs: "
             f"{len(lost) + len(long_lost)} lost, {len(dups)} duplicates, {completed} completed; broker start "
             f"{fmt(startup)}; worker reconnected {fmt(resume)} after the start command (first batch {fmt(first_batch)}); "
             f"progress then cancel "
             f"worked {cancel_ok}/{restarts} times (first progress {fmt(progress_s)}, cancel to `failed` "
             f"{fmt(cancel_s)}); producers: {load.producer.reconnects} reconnects, {load.producer.republished} "
             f"jobs published again")
