"""cluster: 3 RabbitMQ nodes clustered on this machine, quorum job queues (`queue_type = "quorum"`), two
workers and the producer given all three URIs (failover, each in another order); the node that leads the
job queues is stopped 3 times during 300 jobs and started again -> 0 lost; what the producer saw (connection
losses, jobs published again, the slowest confirm) is reported.  Environment: CLUSTER_JOBS (300),
CLUSTER_STOPS (3), CHAOS_SEED (1)."""
import os
import random
import subprocess
import time

from broker import Load
from lib import (CLUSTER_PORTS, NS, STATE, Broker, Collector, Result, Worker, account, declare_reply_queue, log,
                 wait_for, write_config)


def leaders(node):
    """{queue: leader node} of the quorum job queues, from any running node."""
    out = node.ctl("list_queues", "name", "leader", "-q", check=False)
    table = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].startswith(f"{NS}.jobs."):
            table[parts[0]] = parts[1]
    return table


def main(r: Result):
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    n_jobs = int(os.environ.get("CLUSTER_JOBS", "300"))
    n_stops = int(os.environ.get("CLUSTER_STOPS", "3"))
    folder = os.path.join(STATE, "cluster")
    home = os.path.join(folder, "home")
    nodes = [Broker(p, os.path.join(folder, f"n{i + 1}"), home=home) for i, p in enumerate(CLUSTER_PORTS)]
    for n in nodes:
        n.stop()
    subprocess.run(["rm", "-rf", folder])
    for n in nodes:
        r.cleanup.append(n.stop)
    for n in nodes:
        n.start()
    for n in nodes[1:]:
        n._broker("join", nodes[0].node)
    status = nodes[0].ctl("cluster_status", "--formatter", "json")
    r.check("3 nodes form one cluster", all(n.node in status for n in nodes), "")
    urls = [n.url for n in nodes]

    wfolder = os.path.join(folder, "workers")
    cfg1 = write_config(os.path.join(wfolder, "w1.toml"), urls, os.path.join(wfolder, "state"), queue_type="quorum")
    cfg2 = write_config(os.path.join(wfolder, "w2.toml"), urls[1:] + urls[:1], os.path.join(wfolder, "state"),
                        queue_type="quorum")
    workers = [Worker("w1", cfg1, wfolder), Worker("w2", cfg2, wfolder)]
    r.cleanup.append(lambda: [w.stop() for w in workers])
    for w in workers:
        w.start()
    queue_types = nodes[0].ctl("list_queues", "name", "type", "-q")
    r.check("the job queues are quorum queues", all(f"{NS}.jobs.{c}\tquorum" in queue_types for c in ("tiny", "small")),
            queue_types.strip().replace("\n", ", ").replace("\t", " "))
    reply = "chaos.reply.cluster"
    declare_reply_queue(urls, reply, quorum=True)
    collector = Collector(urls[2:] + urls[:2], reply)
    collector.start()
    r.cleanup.append(collector.stop)
    collector.connected.wait(30)

    # the load: n_jobs quick jobs, one every 0.5 s (so that the stops, 30-45 s each on a loaded machine,
    # fall within it), published through the URIs in a third order
    load = Load(urls[2:] + urls[:2], reply, rng, 0.5, "cl", limit=n_jobs)
    load.start()
    r.cleanup.append(load.stop)
    stopped_nodes, downtime = [], []
    for i in range(1, n_stops + 1):
        wait_for(lambda: len(load.jobs) >= i * n_jobs // (n_stops + 1), 600, step=0.2)
        running = [n for n in nodes if n.running()]
        table = leaders(running[0])
        tiny_leader = table.get(f"{NS}.jobs.tiny", "")
        victim = next((n for n in nodes if n.node == tiny_leader), None)
        if victim is None:
            r.check(f"stop {i}: found the leader of the job queues", False, f"leaders: {table}")
            continue
        log(f"stop {i}/{n_stops}: {victim.node} leads {[q for q, l in table.items() if l == victim.node]} "
            f"({len(load.jobs)} jobs published, {collector.count_terminal(load.jobs)} answered)")
        t0 = time.monotonic()
        victim.stop()
        stopped_nodes.append(victim.node)
        time.sleep(rng.uniform(8, 15))
        victim.start()
        downtime.append(time.monotonic() - t0)
        new = leaders(victim)
        log(f"  {victim.node} back after {downtime[-1]:.0f} s; leaders now {new}")
    wait_for(lambda: len(load.jobs) >= n_jobs, 600, step=0.2)
    load.stop()
    jobs = list(load.jobs)
    finished = wait_for(lambda: collector.count_terminal(jobs) >= len(jobs), 600, step=0.5)
    time.sleep(5)
    lost, dups, completed, failed = account(collector, jobs)
    crashes = sum(0 if w.check() else 1 for w in workers)
    failovers = sum(w.log_text().count("event=broker_up") for w in workers) - len(workers)
    p = load.producer
    r.check(f"{n_stops} leader stops done", len(stopped_nodes) == n_stops, ", ".join(stopped_nodes))
    r.check("every job answered (0 lost)", finished and not lost, f"{len(lost)} lost of {len(jobs)}: {lost[:5]}")
    r.check("every job completed", completed == len(jobs), f"{completed} completed; failed {failed[:3]}")
    r.check("no worker exited", crashes == 0, f"{crashes}")
    kinds = sorted({e.split(":")[0] for _, e in p.errors})
    r.figure(f"3 nodes, quorum job queues, 2 workers; the job queues' leader stopped {len(stopped_nodes)} times "
             f"({', '.join(stopped_nodes)}; down {min(downtime):.0f}-{max(downtime):.0f} s each) during {len(jobs)} jobs: "
             f"{len(lost)} lost, {completed} completed, {len(dups)} duplicates; workers failed over {failovers} times; "
             f"producer saw {len(p.errors)} errors ({', '.join(kinds) or 'none'}), {p.reconnects} reconnects, "
             f"published {p.republished} jobs again, slowest confirm {p.max_confirm_s:.1f} s")
