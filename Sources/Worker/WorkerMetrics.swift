// WorkerMetrics: what darkroomd counts, through the swift-metrics API. darkroomd bootstraps the metrics
// system once with a Prometheus registry (`ObservabilityServer.bootstrap`), which `GET /metrics` renders;
// without a bootstrap (a worker embedded in a test process) every handle is a no-op.
//
// Names and labels follow Prometheus conventions: `_total` counters (rates in PromQL: steps/s is
// `rate(darkroom_steps_total[1m])`), `_seconds` histograms, base units. Labels stay bounded: `class` and
// `model` come from the configuration, `outcome` is completed|failed, `code` a failure code of the contract.
// docs/operations.md lists every series.
import Core
import CoreMetrics
import Foundation
import Jobs
import Text

enum MetricName {
    static let jobs = "darkroom_jobs_total"
    static let failures = "darkroom_job_failures_total"
    static let queueWait = "darkroom_job_queue_wait_seconds"
    static let denoise = "darkroom_job_denoise_seconds"
    static let decode = "darkroom_job_decode_seconds"
    static let total = "darkroom_job_duration_seconds"
    static let batchSize = "darkroom_batch_size"
    static let steps = "darkroom_steps_total"
    static let images = "darkroom_images_total"
    static let busySeconds = "darkroom_engine_busy_seconds_total"
    static let busy = "darkroom_engine_busy"
    static let lastProgress = "darkroom_engine_last_progress_timestamp_seconds"
    static let promptHits = "darkroom_prompt_cache_hits_total"
    static let promptMisses = "darkroom_prompt_cache_misses_total"
    static let scheduleHits = "darkroom_schedule_cache_hits_total"
    static let scheduleMisses = "darkroom_schedule_cache_misses_total"
    static let memoryRefusals = "darkroom_memory_guard_refusals_total"
    static let reconnects = "darkroom_broker_reconnects_total"
    static let connected = "darkroom_broker_connected"
    static let stateWritable = "darkroom_state_dir_writable"
    static let stateFailures = "darkroom_state_write_failures_total"
}

/// The labels of one job's series.
struct JobLabels: Sendable {
    var className: String
    /// The model the job asked for, or "none" for a request too broken to name a served one.
    var model: String

    var dimensions: [(String, String)] { [("class", className), ("model", model)] }
}

/// The worker's metrics. Cache counters are kept in step with the caches' own counts (the caches live in
/// modules that do not know about metrics): `syncCaches` adds what they counted since the last call.
final class WorkerMetrics: Sendable {
    private let cacheSeen = Locked<(promptHits: Int, promptMisses: Int, scheduleHits: Int, scheduleMisses: Int)>((0, 0, 0, 0))
    private let busySince = Locked<Date?>(nil)

    init() {
        // Series that exist from the start, so a scrape before the first job shows zeros, not gaps.
        Counter(label: MetricName.reconnects).increment(by: 0)
        Recorder(label: MetricName.connected, aggregate: false).record(0)
        Recorder(label: MetricName.busy, aggregate: false).record(0)
        Recorder(label: MetricName.stateWritable, aggregate: false).record(1)
        for file in ["ledger", "results"] { Counter(label: MetricName.stateFailures, dimensions: [("file", file)]).increment(by: 0) }
        for name in [MetricName.promptHits, MetricName.promptMisses, MetricName.scheduleHits, MetricName.scheduleMisses] {
            Counter(label: name).increment(by: 0)
        }
    }

    /// Zero-valued series for each class and model served, so rates and ratios have a base.
    func declare(classes: [String], models: [String]) {
        for c in classes {
            Counter(label: MetricName.memoryRefusals, dimensions: [("class", c)]).increment(by: 0)
            for m in models {
                let d = JobLabels(className: c, model: m).dimensions
                for outcome in ["completed", "failed"] {
                    Counter(label: MetricName.jobs, dimensions: [("outcome", outcome)] + d).increment(by: 0)
                }
                Counter(label: MetricName.steps, dimensions: d).increment(by: 0)
                Counter(label: MetricName.images, dimensions: d).increment(by: 0)
            }
        }
    }

    /// A job's terminal event went out: completed, or failed with `code`.
    func jobEnded(_ labels: JobLabels, failure: FailureCode?) {
        Counter(label: MetricName.jobs, dimensions: [("outcome", failure == nil ? "completed" : "failed")] + labels.dimensions)
            .increment()
        if let failure {
            Counter(label: MetricName.failures, dimensions: [("code", failure.rawValue), ("class", labels.className)]).increment()
        }
    }

    /// A completed job's durations (the `completed` event's timings).
    func timings(_ labels: JobLabels, queue: Double, denoise: Double, decode: Double, total: Double) {
        let d = labels.dimensions
        for (name, seconds) in [(MetricName.queueWait, queue), (MetricName.denoise, denoise), (MetricName.decode, decode),
                                (MetricName.total, total)] {
            Timer(label: name, dimensions: d).recordNanoseconds(Int64(max(0, seconds) * 1e9))
        }
    }

    func imagesSent(_ labels: JobLabels, _ n: Int) {
        Counter(label: MetricName.images, dimensions: labels.dimensions).increment(by: n)
    }

    /// A batch starts on the engine.
    func batchStarted(className: String, jobs: Int, now: Date = Date()) {
        Recorder(label: MetricName.batchSize, dimensions: [("class", className)], aggregate: true).record(jobs)
        Recorder(label: MetricName.busy, aggregate: false).record(1)
        Recorder(label: MetricName.lastProgress, aggregate: false).record(now.timeIntervalSince1970)
        busySince.withLock { $0 = now }
    }

    /// One denoising step of the running batch (each step advances every image of the batch).
    func step(_ labels: JobLabels, now: Date = Date()) {
        Counter(label: MetricName.steps, dimensions: labels.dimensions).increment()
        Recorder(label: MetricName.lastProgress, aggregate: false).record(now.timeIntervalSince1970)
        addBusy(until: now)
    }

    /// The batch ended (finished, failed or stopped).
    func batchEnded(now: Date = Date()) {
        addBusy(until: now)
        busySince.withLock { $0 = nil }
        Recorder(label: MetricName.busy, aggregate: false).record(0)
        Recorder(label: MetricName.lastProgress, aggregate: false).record(now.timeIntervalSince1970)
    }

    /// Engine time in batches, added as it passes so that `rate()` is the busy ratio even during a long batch.
    private func addBusy(until now: Date) {
        let seconds = busySince.withLock { since -> Double in
            guard let s = since else { return 0 }
            since = now
            return max(0, now.timeIntervalSince(s))
        }
        if seconds > 0 { FloatingPointCounter(label: MetricName.busySeconds).increment(by: seconds) }
    }

    func memoryGuardRefused(className: String) {
        Counter(label: MetricName.memoryRefusals, dimensions: [("class", className)]).increment()
    }

    /// A write under state_dir (`file`: ledger or results) failed, or the ledger took one.
    func stateWrite(_ file: String, ok: Bool) {
        Recorder(label: MetricName.stateWritable, aggregate: false).record(ok ? 1 : 0)
        if !ok { Counter(label: MetricName.stateFailures, dimensions: [("file", file)]).increment() }
    }

    func brokerConnected(_ up: Bool, reconnect: Bool) {
        Recorder(label: MetricName.connected, aggregate: false).record(up ? 1 : 0)
        if reconnect { Counter(label: MetricName.reconnects).increment() }
    }

    /// Adds the prompt cache's and the schedule cache's hits and misses since the last call.
    func syncCaches(prompt: PromptCache.Stats, schedule: (hits: Int, diskHits: Int, misses: Int)) {
        let delta = cacheSeen.withLock { seen -> (Int, Int, Int, Int) in
            let now = (prompt.hits, prompt.misses, schedule.hits + schedule.diskHits, schedule.misses)
            defer { seen = now }
            return (now.0 - seen.promptHits, now.1 - seen.promptMisses, now.2 - seen.scheduleHits, now.3 - seen.scheduleMisses)
        }
        for (name, n) in [(MetricName.promptHits, delta.0), (MetricName.promptMisses, delta.1),
                          (MetricName.scheduleHits, delta.2), (MetricName.scheduleMisses, delta.3)] where n > 0 {
            Counter(label: name).increment(by: n)
        }
    }
}
