import Config
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Jobs
import TestSupport
import Testing
@testable import Worker

// Metrics, health probes and `darkroom status` on real darkroomd processes against the real broker:
// the counters move by exactly the jobs that ran, /readyz turns 503 while the worker drains, and
// `darkroom status` hears from every running worker.
@Suite(.serialized) struct Observability {

    @Test func metricsCountExactlyTheJobsThatRanAndTheFailures() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        // A 5 MiB memory budget: 32x32 jobs fit, 16 images of 128x128 do not.
        let (worker, base) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small",
                                                                 "DARKROOM_WORKER_MEMORY_BUDGET_MB": "5"])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        #expect(await waitStatus(base + "/readyz", 200), "never ready:\n\(worker.output)")
        let before = try await Scrape(base)
        #expect(before.sum("darkroom_broker_connected") == 1)
        #expect(before.sum("darkroom_jobs_total") == 0, "jobs counted before any ran:\n\(before.text)")

        let good = ["m0", "m1", "m2"], bad = ["m-bad0", "m-bad1"]
        for (i, id) in good.enumerated() {
            try await client.submit(job(id, size: 32, steps: 3, seed: UInt64(i)), toClass: "small", id: id)
        }
        for id in bad {   // steps 0: refused by validation, answered `failed` / invalid_request
            try await client.submit(job(id, size: 32, steps: 0), toClass: "small", id: id)
        }
        try await client.submit(job("m-huge", size: 128, steps: 3, extra: ",\"count\":16"), toClass: "small", id: "m-huge")
        #expect(await client.waitTerminal(good + bad + ["m-huge"], timeout: 120), "not every job ended:\n\(worker.output)")
        for id in good { #expect(client.terminal(of: id)?.kind == .completed) }
        for id in bad { #expect(client.terminal(of: id)?.failure?.code == .invalidRequest) }
        #expect(client.terminal(of: "m-huge")?.failure?.code == .tooLarge)

        let after = try await Scrape(base)
        let moved = { (name: String, labels: [String: String]) in after.sum(name, labels) - before.sum(name, labels) }
        #expect(moved("darkroom_jobs_total", ["outcome": "completed", "class": "small", "model": "latent-dit"]) == 3, "\(after.text)")
        #expect(moved("darkroom_jobs_total", ["outcome": "failed", "class": "small"]) == 3, "\(after.text)")
        #expect(moved("darkroom_jobs_total", ["outcome": "failed", "class": "small", "model": "none"]) == 2)
        #expect(moved("darkroom_jobs_total", [:]) == 6)
        #expect(moved("darkroom_job_failures_total", ["code": "invalid_request", "class": "small"]) == 2)
        #expect(moved("darkroom_job_failures_total", ["code": "too_large", "class": "small"]) == 1)
        #expect(moved("darkroom_memory_guard_refusals_total", ["class": "small"]) == 1)
        #expect(moved("darkroom_images_total", ["class": "small", "model": "latent-dit"]) == 3)
        for h in ["darkroom_job_queue_wait_seconds", "darkroom_job_denoise_seconds", "darkroom_job_decode_seconds",
                  "darkroom_job_duration_seconds"] {
            #expect(moved(h + "_count", ["class": "small", "model": "latent-dit"]) == 3, "\(h)")
        }
        // Every job of a batch took the same 3 steps: steps = 3 x batches, and the batch sizes add up to the jobs run.
        let batches = moved("darkroom_batch_size_count", ["class": "small"])
        #expect(batches >= 1 && batches <= 3)
        #expect(moved("darkroom_batch_size_sum", ["class": "small"]) == 3)
        #expect(moved("darkroom_steps_total", ["class": "small", "model": "latent-dit"]) == 3 * batches)
        #expect(after.sum("darkroom_engine_busy_seconds_total") > 0)
        #expect(after.sum("darkroom_engine_busy") == 0)
        #expect(after.sum("darkroom_schedule_cache_misses_total") + after.sum("darkroom_schedule_cache_hits_total") >= batches)
        #expect(after.sum("process_resident_memory_bytes") > 10_000_000)
        #expect(after.sum("darkroom_ready") == 1 && after.sum("darkroom_live") == 1)
        #expect(after.text.contains("# TYPE darkroom_job_duration_seconds histogram"))

        try await stopAndExpectExit0(worker)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    /// The broker drops the worker's connection: one reconnect counted, connected and ready again, jobs still served.
    @Test func aDroppedConnectionCountsOneReconnectAndTheWorkerIsReadyAgain() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let (worker, base) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small", "DARKROOM_WORKER_ID": "\(ns)-r"])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        #expect(await waitStatus(base + "/readyz", 200), "never ready:\n\(worker.output)")
        #expect(try await Scrape(base).sum("darkroom_broker_reconnects_total") == 0)
        let (_, listing) = try await run(repoRoot + "/ops/broker", ["ctl", "list_connections", "pid", "client_properties", "-s"])
        let line = listing.split(separator: "\n").first { $0.contains("darkroomd \(ns)-r") }
        let pid = try #require(line?.split(separator: "\t").first.map(String.init), "\(listing)")
        _ = try await run(repoRoot + "/ops/broker", ["ctl", "close_connection", pid, "test: broker outage"])
        let end = Date().addingTimeInterval(60)
        var scrape = try await Scrape(base)
        while Date() < end, scrape.sum("darkroom_broker_reconnects_total") < 1 {
            try await Task.sleep(for: .milliseconds(50))
            scrape = try await Scrape(base)
        }
        #expect(scrape.sum("darkroom_broker_reconnects_total") == 1, "\(worker.output)")
        #expect(await waitStatus(base + "/readyz", 200), "not ready after reconnecting:\n\(worker.output)")
        try await client.submit(job("r0", size: 32, steps: 3), toClass: "small", id: "r0")
        #expect(await client.waitTerminal(["r0"], timeout: 60))
        let after = try await Scrape(base)
        #expect(after.sum("darkroom_broker_reconnects_total") == 1 && after.sum("darkroom_broker_connected") == 1)
        try await stopAndExpectExit0(worker)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func readyzTurns503WhileTheWorkerDrainsAndHealthzStaysUp() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let (worker, base) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small"])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        #expect(await waitStatus(base + "/readyz", 200), "never ready:\n\(worker.output)")
        #expect(try await get(base + "/healthz").status == 200)
        #expect(try await get(base + "/nope").status == 404)

        // One batch of 8 images x 200 steps at 128x128 (seconds): the drain waits for it.
        try await client.submit(job("drain-ready", size: 128, steps: 200, seed: 1, extra: ",\"count\":8"), toClass: "small", id: "drain-ready")
        let running = await client.wait(timeout: 60) { client.events(of: "drain-ready").contains { $0.kind == .progress } }
        #expect(running, "the batch never started:\n\(worker.output)")
        worker.signal(SIGTERM)
        var sawDraining = false
        let end = Date().addingTimeInterval(60)
        while Date() < end, worker.process.isRunning, !sawDraining {
            if let r = try? await get(base + "/readyz"), r.status == 503, r.body.contains("draining") { sawDraining = true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        #expect(sawDraining, "/readyz never answered 503 draining:\n\(worker.output)")
        #expect(client.terminal(of: "drain-ready") == nil, "the batch ended before the probe saw the drain")
        if sawDraining { #expect(try await get(base + "/healthz").status == 200, "alive while draining") }
        #expect(await worker.waitExit(timeout: 120) == 0, "darkroomd did not exit 0:\n\(worker.output)")
        #expect(client.terminal(of: "drain-ready")?.kind == .completed)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    /// The probes follow the states systemd sees: /readyz is 200 once READY=1 went out; a class queue without a
    /// consumer makes /readyz 503 at once and, after the watchdog interval (2 s here), /healthz 503 too (the
    /// same stale part that stops WATCHDOG=1); with the queue back, both are 200 again.
    @Test func theProbesFollowTheStatesSystemdSees() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let notify = try DaemonNotifyCollector(name: "probes")
        defer { notify.stop() }
        let (worker, base) = try await startWithMetrics(ns, dir, ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000",
                                                                 "DARKROOM_WORKER_CONSUME": "small"])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        #expect(await notify.wait(timeout: 90) { $0.messages.contains { $0.contains("READY=1") } }, "\(worker.output)")
        #expect(await waitStatus(base + "/readyz", 200))
        #expect(try await get(base + "/healthz").status == 200)

        _ = try await client.client.deleteQueue(name: "\(ns).jobs.small")
        #expect(await waitStatus(base + "/readyz", 503, containing: "no consumer on \(ns).jobs.small", timeout: 30), "\(worker.output)")
        #expect(await waitStatus(base + "/healthz", 503, containing: "consumers made no progress", timeout: 30), "\(worker.output)")
        #expect(try await Scrape(base).sum("darkroom_live") == 0)

        var cfg = try testConfig(namespace: ns, state: dir)
        cfg.classes = DarkroomConfig.defaultClasses   // as binaryWorkerTest declared them
        try await client.client.declare(cfg.contractTopology)
        #expect(await waitStatus(base + "/readyz", 200, timeout: 60), "\(worker.output)")
        #expect(await waitStatus(base + "/healthz", 200, timeout: 30))
        try await stopAndExpectExit0(worker)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func statusListsEveryRunningWorker() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let (small, smallURL) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small", "DARKROOM_WORKER_ID": "\(ns)-small-1"])
        defer { if small.process.isRunning { small.signal(SIGKILL) } }
        let (medium, mediumURL) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "medium", "DARKROOM_WORKER_ID": "\(ns)-medium-1"])
        defer { if medium.process.isRunning { medium.signal(SIGKILL) } }
        #expect(await waitStatus(smallURL + "/readyz", 200), "\(small.output)")
        #expect(await waitStatus(mediumURL + "/readyz", 200), "\(medium.output)")
        try await client.submit(job("st0", size: 32, steps: 3), toClass: "small", id: "st0")
        #expect(await client.waitTerminal(["st0"], timeout: 60))

        let run = try runDarkroom(["status", "--json", "--expect", "2", "--timeout", "60"], namespace: ns, dir: dir)
        #expect(run.code == 0, "\(run.stderr)")
        let reports = try JSONDecoder().decode([WorkerStatusReport].self, from: Data(run.stdout.utf8))
        #expect(reports.map(\.worker) == ["\(ns)-medium-1", "\(ns)-small-1"], "\(run.stdout)")
        #expect(reports.map(\.classes) == [["medium"], ["small"]])
        #expect(reports.allSatisfy { $0.state == "consuming" && $0.models == ["latent-dit"] && $0.batch == nil && $0.jobsFailed == 0 })
        #expect(reports.map(\.jobsDone) == [0, 1])
        #expect(reports.map(\.pid).sorted() == [Int(small.process.processIdentifier), Int(medium.process.processIdentifier)].sorted())

        let text = try runDarkroom(["status", "--expect", "2", "--timeout", "60"], namespace: ns, dir: dir)
        let lines = text.stdout.split(separator: "\n")
        #expect(text.code == 0 && lines.count == 2, "\(text.stdout)\(text.stderr)")
        #expect(lines.first?.hasPrefix("\(ns)-medium-1  medium  latent-dit  consuming  idle  0 done  0 failed  up ") == true, "\(text.stdout)")
        #expect(lines.last?.hasPrefix("\(ns)-small-1  small  latent-dit  consuming  idle  1 done  0 failed  up ") == true, "\(text.stdout)")

        try await stopAndExpectExit0(small)
        try await stopAndExpectExit0(medium)
        // Nobody left on the bus: a clear message and exit 1, at once (the request is returned unroutable).
        let none = try runDarkroom(["status", "--timeout", "60"], namespace: ns, dir: dir)
        #expect(none.code == 1 && none.stdout.isEmpty && none.stderr.contains("no worker answered"), "\(none.stderr)")
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func aBadListenAddressStopsDarkroomdWithAConfigError() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let bad = try WorkerProcess(namespace: ns, state: dir, extraEnv: ["DARKROOM_METRICS_LISTEN": "9464"])
        #expect(await bad.waitExit(timeout: 60) == 78)
        #expect(bad.output.contains("metrics.listen") && bad.output.contains("host:port"), "\(bad.output)")
        // Taken port: the second listener on it refuses to start, naming the key.
        let (first, base) = try await startWithMetrics(ns, dir, ["DARKROOM_WORKER_CONSUME": "small"])
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        let address = String(base.dropFirst("http://".count))
        let second = try WorkerProcess(namespace: ns, state: dir, extraEnv: ["DARKROOM_METRICS_LISTEN": address])
        #expect(await second.waitExit(timeout: 60) == 78)
        #expect(second.output.contains("metrics.listen \"\(address)\": cannot listen"), "\(second.output)")
        try await stopAndExpectExit0(first)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }
}

/// Starts darkroomd with its listener on a free port; returns it with the base URL it logged.
func startWithMetrics(_ ns: String, _ dir: String, _ env: [String: String], mounts: String? = nil) async throws -> (WorkerProcess, String) {
    let worker = try WorkerProcess(namespace: ns, state: dir, mounts: mounts,
                                   extraEnv: env.merging(["DARKROOM_METRICS_LISTEN": "127.0.0.1:0"]) { a, _ in a })
    let end = Date().addingTimeInterval(60)
    while Date() < end {
        let out = worker.output
        if let r = out.range(of: "metrics listening on http://") {
            let address = out[r.upperBound...].prefix { !$0.isWhitespace }
            return (worker, "http://" + address)
        }
        guard worker.process.isRunning else { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    worker.signal(SIGKILL)
    throw TestFailure("darkroomd never logged its metrics address:\n\(worker.output)")
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func stopAndExpectExit0(_ worker: WorkerProcess) async throws {
    worker.signal(SIGTERM)
    #expect(await worker.waitExit() == 0, "darkroomd did not exit 0 on SIGTERM:\n\(worker.output)")
}

func get(_ url: String) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = 10
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// Polls until GET answers `status` with a body containing `containing` (the listener is up from the start;
/// readiness comes after the models load).
func waitStatus(_ url: String, _ status: Int, containing: String = "", timeout: Double = 90) async -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if let r = try? await get(url), r.status == status, containing.isEmpty || r.body.contains(containing) { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}

/// One scrape of GET /metrics in the Prometheus text format.
struct Scrape {
    let text: String
    /// (name, labels, value) of every sample line.
    let samples: [(String, [String: String], Double)]

    init(_ base: String) async throws {
        let r = try await get(base + "/metrics")
        guard r.status == 200 else { throw TestFailure("GET /metrics answered \(r.status): \(r.body)") }
        text = r.body
        samples = text.split(separator: "\n").compactMap { line -> (String, [String: String], Double)? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return (String(series), [:], value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { labels[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
            }
            return (String(series[..<brace]), labels, value)
        }
    }

    /// The sum over every series of `name` whose labels include `labels` (0 when none).
    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.0 == name && labels.allSatisfy { k, v in sample.1[k] == v } }.reduce(0) { $0 + $1.2 }
    }
}

/// Runs the darkroom CLI against this test's namespace on the test broker.
private func runDarkroom(_ args: [String], namespace: String, dir: String) throws -> (code: Int32, stdout: String, stderr: String) {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DARKROOM_") }
    env["DARKROOM_BROKER_URLS"] = brokerURL
    env["DARKROOM_NAMESPACE"] = namespace
    return try runCapturing(darkroomBinary(), args, environment: env, in: dir)
}
