// The one-line STATUS= text `systemctl status darkroom@small-1` shows, built from the worker's counters:
//   "consuming small: 12 done, 1 failed; batch k3x9 running (4 jobs, step 12/30); schedule cache 10 hits, 2 misses"

public struct ServiceStatus: Sendable, Equatable, CustomStringConvertible {
    public enum State: String, Sendable, Equatable {
        case starting, loading, connecting, consuming, reloading, draining, reconnecting, stopping
    }

    /// The batch the engine is running now.
    public struct Batch: Sendable, Equatable {
        /// The batch id the worker logs as DARKROOM_BATCH.
        public var id: String
        public var jobs: Int
        public var step: Int?
        public var steps: Int?

        public init(id: String, jobs: Int, step: Int? = nil, steps: Int? = nil) {
            self.id = id
            self.jobs = jobs
            self.step = step
            self.steps = steps
        }
    }

    public var state: State
    /// Classes consumed (usually the instance's one class).
    public var classes: [String]
    public var jobsDone: Int
    public var jobsFailed: Int
    public var batch: Batch?
    public var scheduleCacheHits: Int
    public var scheduleCacheMisses: Int
    /// A short free-form note, e.g. "loading model tiny-shapes" or "broker unreachable, retry in 8 s".
    public var note: String?

    public init(state: State, classes: [String], jobsDone: Int = 0, jobsFailed: Int = 0, batch: Batch? = nil,
                scheduleCacheHits: Int = 0, scheduleCacheMisses: Int = 0, note: String? = nil) {
        self.state = state
        self.classes = classes
        self.jobsDone = jobsDone
        self.jobsFailed = jobsFailed
        self.batch = batch
        self.scheduleCacheHits = scheduleCacheHits
        self.scheduleCacheMisses = scheduleCacheMisses
        self.note = note
    }

    public var description: String {
        var text = state.rawValue
        if !classes.isEmpty { text += " " + classes.joined(separator: ",") }
        if let note { text += " (" + note + ")" }
        text += ": \(jobsDone) done, \(jobsFailed) failed"
        if let batch {
            text += "; batch \(batch.id) running (\(batch.jobs) job" + (batch.jobs == 1 ? "" : "s")
            if let step = batch.step, let steps = batch.steps { text += ", step \(step)/\(steps)" }
            text += ")"
        } else {
            text += "; idle"
        }
        text += "; schedule cache \(scheduleCacheHits) hits, \(scheduleCacheMisses) misses"
        return text
    }
}
