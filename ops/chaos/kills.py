"""kills: 2 workers, 500 jobs of mixed classes, 20 kill -9 at random moments, each worker restarted by the
harness as systemd would (Restart=always) -> 0 lost; duplicates (a job with two terminal events) counted,
goal <= 0.5%. The jobs are published evenly over KILLS_SECONDS and the kills fall at random moments in that
time.  Environment: KILLS_JOBS (500), KILLS_KILLS (20), KILLS_SECONDS (120), CHAOS_SEED (1)."""
import os
import random
import threading
import time

from lib import (Producer, Result, Setup, account, log, mixed_job, wait_for)


def main(r: Result):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    n_jobs = int(os.environ.get("KILLS_JOBS", "500"))
    n_kills = int(os.environ.get("KILLS_KILLS", "20"))
    s = Setup(r, "kills", n_workers=2)
    urls, workers, reply, collector = s.urls, s.workers, s.reply, s.collector

    # the jobs are published over KILLS_SECONDS, and the kills fall at random moments within that time
    seconds = float(os.environ.get("KILLS_SECONDS", "120"))
    specs = [mixed_job(rng, f"kill-{i:04d}") for i in range(n_jobs)]
    jobs = [job["id"] for job, _ in specs]
    classes = {c: sum(1 for _, k in specs if k == c) for c in ("tiny", "small")}
    images = sum(job["count"] for job, _ in specs)
    kill_at = sorted(rng.uniform(1, seconds) for _ in range(n_kills))

    def publish():
        producer = Producer(urls)
        for i, (job, cls) in enumerate(specs):
            delay = t0 + i * seconds / n_jobs - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.job(job, reply, cls)
        producer.close()

    t0 = time.monotonic()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    log(f"publishing {n_jobs} jobs over {seconds:.0f} s ({classes['tiny']} tiny, {classes['small']} small, {images} images)")

    kills, crashes = 0, 0
    for at in kill_at:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for w in workers:
            if not w.check():
                crashes += 1
                w.start(wait_ready=False)
        victim = rng.choice(workers)
        victim.kill9()
        kills += 1
        log(f"kill -9 #{kills} of {victim.name} at {at:.1f} s ({collector.count_terminal(jobs)}/{n_jobs} answered)")
        time.sleep(rng.uniform(0.1, 1.0))      # systemd's RestartSec
        victim.start(wait_ready=False)
    publisher.join()

    finished = wait_for(lambda: collector.count_terminal(jobs) >= n_jobs, 900, step=0.5)
    wall = time.monotonic() - t0
    time.sleep(5)                              # a late duplicate would show up here
    lost, dups, completed, failed = account(collector, jobs)
    for w in workers:
        if not w.check():
            crashes += 1
    reruns = sum(1 for j in jobs if collector.kinds(j).count("accepted") > 1)
    ledger_hits = sum(w.log_text().count("event=duplicate") for w in workers)
    r.check(f"{n_kills} kill -9 done while jobs were running", kills == n_kills, f"{kills} kills")
    r.check("every job answered (0 lost)", finished and not lost, f"{len(lost)} lost: {lost[:5]}")
    r.check("every job completed", completed == n_jobs, f"{completed} completed, failed: {failed[:3]}")
    rate = 100.0 * len(dups) / n_jobs
    r.check("duplicates <= 0.5%", rate <= 0.5, f"{len(dups)} jobs with two terminal events ({rate:.2f}%): {dups[:5]}")
    r.check("no exit the harness did not cause", crashes == 0, f"{crashes} crashes")
    r.figure(f"{n_jobs} jobs ({classes['tiny']} tiny 32x32, {classes['small']} small 64x64/64x32; {images} images, "
             f"2-6 steps), 2 workers, {kills} kill -9 + restarts in {wall:.0f} s: {len(lost)} lost, "
             f"{completed} completed, {len(dups)} duplicate terminal events ({rate:.1f}%), "
             f"{reruns} jobs started again after a kill, {ledger_hits} redelivered finished jobs acked from the ledger, "
             f"{crashes} crashes")
