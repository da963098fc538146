"""faults: resource faults around one worker -- its state dir full (a 1 MiB tmpfs filled up), then
read-only (the same tmpfs remounted ro); a reply queue deleted while its job runs; a reply queue at its
max-length (x-overflow reject-publish, and drop-head). Each must give a clear log line, a `failed` or a
dead-letter copy where the contract says so, no lost job, and a worker that keeps serving (a plain job
completes after each fault). A tmpfs needs root; without it the state-dir faults are reported as not run."""
import os
import json
import subprocess
import time
import uuid

from lib import (NS, STATE, Producer, Result, Setup, connect, declare_reply_queue, wait_for)


def job(steps=2, size=32):
    jid = f"f-{uuid.uuid4().hex[:10]}"
    return {"v": 1, "id": jid, "prompt": "red circle", "width": size, "height": size, "steps": steps, "seed": 1}


def dead_copy(urls, cid, timeout=60):
    """Waits for the dead-letter copy of message `cid` in darkroom.dead; returns its darkroom-error or None."""
    conn = connect(urls)
    ch = conn.channel()
    end = time.monotonic() + timeout
    found = None
    while time.monotonic() < end and found is None:
        method, props, _ = ch.basic_get(f"{NS}.dead", auto_ack=False)
        if method is None:
            time.sleep(0.5)
            continue
        if props.correlation_id == cid:
            found = (props.headers or {}).get("darkroom-error", "(no darkroom-error header)")
            ch.basic_ack(method.delivery_tag)
        else:
            ch.basic_nack(method.delivery_tag, requeue=True)
            time.sleep(0.1)
    conn.close()
    return found


def main(r: Result):
    folder = os.path.join(STATE, "faults")
    state = os.path.join(folder, "state")
    subprocess.run(["umount", state], capture_output=True)
    subprocess.run(["rm", "-rf", folder])
    os.makedirs(state)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "chaos-state", state],
                             capture_output=True, text=True).returncode == 0
    if mounted:
        r.cleanup.append(lambda: subprocess.run(["umount", "-l", state], capture_output=True))
    s = Setup(r, "faults", state_dir=state)
    urls, worker, reply, collector = s.urls, s.worker, s.reply, s.collector
    producer = Producer(urls)
    figures = []

    def serves(what):
        j = job()
        producer.job(j, reply, "tiny")
        ok = wait_for(lambda: collector.terminals(j["id"]), 120, step=0.2)
        kinds = [t[0] for t in collector.terminals(j["id"])]
        return r.check(f"after {what}: the worker still serves (a plain job completed)",
                       ok and kinds == ["completed"] and worker.check(), f"{kinds}")

    serves("start")
    # ---- state dir full, then read-only
    if not mounted:
        r.check("state dir faults (need root for a tmpfs)", False, "mount -t tmpfs failed: not run")
    else:
        for fault in ("full", "read-only"):
            offset = len(worker.log_text().encode())
            if fault == "full":
                subprocess.run(["dd", "if=/dev/zero", f"of={state}/fill", "bs=64k"], capture_output=True)
            else:
                os.remove(f"{state}/fill")
                subprocess.run(["mount", "-o", "remount,ro", state], check=True)
            jobs = [job() for _ in range(5)]
            seed_job = job()
            seed_job["save_seed_as"] = f"chaos-{fault.replace('-', '')}"
            for j in jobs + [seed_job]:
                producer.job(j, reply, "tiny")
            ok = wait_for(lambda: all(collector.terminals(j["id"]) for j in jobs + [seed_job]), 120, step=0.2)
            kinds = [[t[0] for t in collector.terminals(j["id"])] for j in jobs]
            seed_answer = collector.terminals(seed_job["id"])
            seed_body = seed_answer[0][2].decode("utf-8", "replace") if seed_answer else ""
            text = worker.log_since(offset)
            lines = [l for l in text.splitlines() if "No space left" in l or "Read-only" in l]
            r.check(f"state dir {fault}: 5 plain jobs completed, each answered once",
                    ok and all(k == ["completed"] for k in kinds), f"{kinds}")
            r.check(f"state dir {fault}: a job that must store a seed fails with the reason",
                    len(seed_answer) == 1 and seed_answer[0][0] == "failed" and "seed could not be stored" in seed_body,
                    seed_body[:200])
            r.check(f"state dir {fault}: a clear log line", bool(lines), lines[0][:200] if lines else "none")
            leftovers = [f for f in os.listdir(os.path.join(state, "seeds")) if ".tmp-" in f] \
                if os.path.isdir(os.path.join(state, "seeds")) else []
            r.check(f"state dir {fault}: no partial file left behind", not leftovers, f"{leftovers}")
            try:
                cause = json.loads(seed_body)["message"].rsplit(": ", 1)[-1]
            except (ValueError, KeyError):
                cause = seed_body[-80:]
            figures.append(f"state dir {fault}: 5/5 plain jobs completed, a save_seed_as job failed/internal "
                           f"(\"...{cause}\"), log line, no partial file")
            if fault == "read-only":
                subprocess.run(["mount", "-o", "remount,rw", state], check=True)
            serves(f"state dir {fault} (repaired)")

    # ---- reply queue deleted while its job runs
    conn = connect(urls)
    ch = conn.channel()
    gone = f"chaos.reply.gone-{uuid.uuid4().hex[:6]}"
    ch.queue_declare(queue=gone, durable=True)
    j = job(steps=60, size=64)
    offset = len(worker.log_text().encode())
    producer.job(j, gone, "small")
    started = wait_for(lambda: f"job={j['id']}" in worker.log_since(offset) or "batch started" in worker.log_since(offset), 60)
    time.sleep(0.5)
    ch.queue_delete(gone)
    conn.close()
    reason = dead_copy(urls, j["id"], timeout=120)
    text = worker.log_since(offset)
    line = next((l for l in text.splitlines() if gone in l or "returned" in l), "")
    r.check("reply queue deleted mid-job: the job is dead-lettered with a reason", started and reason,
            f"darkroom-error: {reason}")
    r.check("reply queue deleted mid-job: a clear log line", bool(line), line[:200])
    figures.append("reply queue deleted mid-job: dead-lettered once with the reason (\"... does not exist (the broker "
                   "returned the terminal event: 312 NO_ROUTE)\")" if reason else "reply queue deleted mid-job: no dead-letter copy")
    serves("the reply queue was deleted")

    # ---- reply queue at its max-length
    for overflow in ("reject-publish", "drop-head"):
        q = f"chaos.reply.full-{overflow}"
        declare_reply_queue(urls, q, arguments={"x-max-length": 2, "x-overflow": overflow})
        j = job(steps=8)
        j["progress_every"] = 1
        offset = len(worker.log_text().encode())
        producer.job(j, q, "tiny")
        if overflow == "reject-publish":
            reason = dead_copy(urls, j["id"], timeout=180)
            text = worker.log_since(offset)
            runs = text.count("batch started")
            line = next((l for l in text.splitlines() if "refused" in l or "dead-letter" in l), "")
            r.check("reply queue full (reject-publish): the job is dead-lettered with a reason, run once",
                    reason and runs == 1, f"darkroom-error: {reason}; ran {runs} times")
            r.check("reply queue full (reject-publish): a clear log line", bool(line), line[:200])
            figures.append(f"reply queue at max-length (reject-publish): terminal event nacked 5 times, job dead-lettered "
                           f"with the reason after {runs} run(s)" if reason else "reply queue at max-length: no dead-letter copy")
        else:
            ok = wait_for(lambda: "event=completed" in worker.log_since(offset) or "event=failed" in worker.log_since(offset), 120)
            time.sleep(1)
            conn = connect(urls)
            ch = conn.channel()
            kinds = []
            while True:
                method, props, _ = ch.basic_get(q, auto_ack=True)
                if method is None:
                    break
                kinds.append((props.headers or {}).get("darkroom-event"))
            conn.close()
            r.check("reply queue full (drop-head): the newest events, the terminal one last, are kept",
                    ok and kinds and kinds[-1] == "completed", f"{kinds}")
            figures.append(f"reply queue at max-length (drop-head): kept {', '.join(map(str, kinds))}")
        serves(f"the reply queue at max-length ({overflow})")
    producer.close()
    r.check("the worker never exited", worker.check() and not worker.crashes, f"{worker.crashes}")
    r.figure("; ".join(figures))
