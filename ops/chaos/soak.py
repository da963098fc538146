"""soak: SOAK_MINUTES (30) of mixed load on one worker -- a producer keeps 8 jobs in flight (both classes,
1-2 images, 2-6 steps), with a malformed job every 25th and a cancel every 40th -> 0 lost; RSS drift
(end against the end of the first interval, once warm) and throughput per interval reported (6 intervals)."""
import json
import os
import random
import time

from lib import (Producer, Result, Setup, account, log, mixed_job, wait_for)


def main(r: Result):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    minutes = float(os.environ.get("SOAK_MINUTES", "30"))
    inflight = 8
    s = Setup(r, "soak")
    urls, worker, reply, collector, folder = s.urls, s.worker, s.reply, s.collector, s.folder
    producer = Producer(urls)

    jobs, kinds = [], {}
    t0 = time.monotonic()
    end = t0 + minutes * 60
    buckets = 6
    bucket_len = minutes * 60 / buckets
    marks = []               # (minute, completed so far, rss kB)
    i = 0
    while time.monotonic() < end:
        open_jobs = [j for j in jobs[-200:] if not collector.terminals(j)]
        while len(open_jobs) < inflight:
            jid = f"soak-{i:06d}"
            if i % 25 == 24:
                body = {"v": 1, "id": jid, "prompt": "purple hexagon", "width": 32, "height": 32}
                cls, kind = "tiny", "malformed"
            else:
                body, cls = mixed_job(rng, jid)
                kind = "job"
            producer.job(body, reply, cls)
            if i % 40 == 39:
                producer.cancel(jid)
                kind = "cancelled"
            kinds[jid] = kind
            jobs.append(jid)
            open_jobs.append(jid)
            i += 1
        now = time.monotonic()
        if now - t0 >= (len(marks) + 1) * bucket_len:
            done = collector.count_terminal(jobs)
            marks.append(((now - t0) / 60, done, worker.rss_kb()))
            log(f"soak: {marks[-1][0]:.1f} min, {done} answered, RSS {marks[-1][2]} kB")
        time.sleep(0.1)
    producer.close()
    finished = wait_for(lambda: collector.count_terminal(jobs) >= len(jobs), 300, step=0.5)
    if len(marks) < buckets:
        marks.append(((time.monotonic() - t0) / 60, collector.count_terminal(jobs), worker.rss_kb()))
    time.sleep(3)
    lost, dups, completed, failed = account(collector, jobs)
    wrong = [j for j in jobs if kinds[j] == "job" and [t[0] for t in collector.terminals(j)] != ["completed"]]
    alive = worker.check()
    rss0, rss1 = marks[0][2], marks[-1][2]
    drift = (rss1 / rss0 - 1) * 100 if rss0 and rss1 else float("nan")
    r.check("every job answered (0 lost)", finished and not lost, f"{len(lost)} lost of {len(jobs)}")
    r.check("every plain job completed (malformed ones failed, cancelled ones either)", not wrong, f"{wrong[:5]}")
    r.check("no duplicate terminal events", not dups, f"{dups[:5]}")
    r.check("the worker never exited", alive and not worker.crashes, f"{worker.crashes}")
    prev_t, prev_n, rows = 0.0, 0, []
    for t, n, rss in marks:
        rows.append(f"{prev_t:.1f}-{t:.1f} min {((n - prev_n) / max(t - prev_t, 1e-9)):.0f} jobs/min RSS {(rss or 0) // 1024} MiB")
        prev_t, prev_n = t, n
    r.figure(f"{minutes:g} min, {len(jobs)} jobs ({sum(1 for k in kinds.values() if k == 'malformed')} malformed, "
             f"{sum(1 for k in kinds.values() if k == 'cancelled')} cancelled), 8 in flight: {len(lost)} lost, "
             f"{len(dups)} duplicates; RSS drift after the first interval {drift:+.1f}%; " + ", ".join(rows))
    with open(os.path.join(folder, "marks.json"), "w") as f:
        json.dump(marks, f)
