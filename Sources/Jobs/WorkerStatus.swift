// A worker's answer to `{"v": 1, "status": true}` on the control exchange (docs/protocol.md, section 7):
//   {"v":1,"worker":"host-small-1","pid":4242,"classes":["small"],"models":["tiny-shapes"],"state":"consuming",
//    "batch":{"id":"k3x9","jobs":4},"jobs_done":12,"jobs_failed":1,"uptime_s":3600}
// published to the request's reply_to with its correlation_id; `darkroom status` prints one line per answer.
import Core
import Foundation

public struct WorkerStatusReport: Codable, Sendable, Equatable {
    public struct Batch: Codable, Sendable, Equatable {
        public var id: String
        public var jobs: Int

        public init(id: String, jobs: Int) {
            self.id = id
            self.jobs = jobs
        }
    }

    public var v: Int = 1
    public var worker: String
    public var pid: Int
    public var classes: [String]
    public var models: [String]
    /// consuming, reconnecting, draining (the STATUS= line's states).
    public var state: String
    /// The batch the engine runs now; nil when idle.
    public var batch: Batch?
    public var jobsDone: Int
    public var jobsFailed: Int
    public var uptimeSeconds: Int

    enum CodingKeys: String, CodingKey {
        case v, worker, pid, classes, models, state, batch
        case jobsDone = "jobs_done", jobsFailed = "jobs_failed", uptimeSeconds = "uptime_s"
    }

    public init(worker: String, pid: Int, classes: [String], models: [String], state: String, batch: Batch?,
                jobsDone: Int, jobsFailed: Int, uptimeSeconds: Int) {
        self.worker = worker
        self.pid = pid
        self.classes = classes
        self.models = models
        self.state = state
        self.batch = batch
        self.jobsDone = jobsDone
        self.jobsFailed = jobsFailed
        self.uptimeSeconds = uptimeSeconds
    }

    /// A report that does not follow the contract.
    public struct DecodeError: CodedError, Equatable {
        public enum Code: String, Sendable { case badStatus = "bad_status" }
        public var code: Code { .badStatus }
        public var message: String
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(self))) ?? []
    }

    public static func decode(_ body: [UInt8]) throws(DecodeError) -> WorkerStatusReport {
        let report: WorkerStatusReport
        do {
            report = try JSONDecoder().decode(WorkerStatusReport.self, from: Data(body))
        } catch {
            throw DecodeError(message: "worker status report is not a v1 report: \(error)")
        }
        guard report.v == 1 else { throw DecodeError(message: "worker status report has v \(report.v); this client reads v 1") }
        return report
    }

    /// One line for a terminal: `host-small-1  small  tiny-shapes  consuming  batch k3x9 (4 jobs)  12 done  1 failed  up 1h00m`.
    public var line: String {
        let batchText = batch.map { "batch \($0.id) (\($0.jobs) job\($0.jobs == 1 ? "" : "s"))" } ?? "idle"
        return [worker, classes.joined(separator: ","), models.joined(separator: ","), state, batchText,
                "\(jobsDone) done", "\(jobsFailed) failed", "up \(Self.duration(uptimeSeconds))"].joined(separator: "  ")
    }

    static func duration(_ s: Int) -> String {
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        if s < 86400 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        return "\(s / 86400)d\(String(format: "%02d", s % 86400 / 3600))h"
    }
}
