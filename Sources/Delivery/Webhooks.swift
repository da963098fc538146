// Webhooks: every event a job's `webhook.events` names is POSTed to its `webhook.url`, the same body and
// content type as on the reply queue, signed with the named secret. Per job in order (one post at a time per
// job, jobs in parallel), retried with capped exponential backoff, never on the engine's thread and never in
// the way of the reply queue or the ack: the daemon hands an event over and moves on.
//
// Headers of every post (docs/protocol.md, "Webhooks"):
//   X-Darkroom-Event: accepted|progress|image|completed|failed    X-Darkroom-Job: <job id>
//   X-Darkroom-Delivery: <job id>.<n>   (n counts the job's posts from 1; the same on every retry of one event)
//   X-Darkroom-Timestamp: <unix seconds when this attempt was signed>
//   X-Darkroom-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//   X-Darkroom-Index/-Seed/-Width/-Height on image events (as the AMQP headers darkroom-index, ...).
// The timestamp is inside the signed text, so a receiver that checks it (within 5 minutes, say) also refuses
// replays of an old post.
import Config
import Core
import Foundation
import Jobs

/// What became of one event's post.
public enum WebhookOutcome: String, Sendable {
    /// A 2xx answer.
    case delivered
    /// Given up after the attempts, or refused with a 4xx that retrying cannot change.
    case failed
    /// Not posted: an earlier event of the same job failed, so the rest of its events are skipped.
    case dropped
}

/// Signs one event for one attempt.
public struct WebhookSignature: Sendable {
    public static func headers(for event: OutgoingEvent, delivery: String, secret: [UInt8], timestamp: Int) -> [(String, String)] {
        let signed = Array("\(timestamp).".utf8) + event.body
        var h: [(String, String)] = [
            ("Content-Type", event.contentType),
            ("User-Agent", "darkroomd"),
            ("X-Darkroom-Delivery", delivery),
            ("X-Darkroom-Timestamp", String(timestamp)),
            ("X-Darkroom-Signature", "sha256=" + Digest.hex(Digest.hmacSHA256(key: secret, signed))),
        ]
        for header in event.headers where header.key.hasPrefix("darkroom-") {
            let name = header.key.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: "-")
            h.append(("X-" + name, header.value.description))
        }
        return h
    }
}

public final class WebhookDispatcher: Sendable {
    public struct Settings: Sendable {
        public var maxAttempts: Int
        public var timeout: Double
        /// Seconds before the second attempt; doubled each time up to `maxBackoff`.
        public var firstBackoff: Double
        public var maxBackoff: Double

        public init(maxAttempts: Int, timeout: Double, firstBackoff: Double = 1, maxBackoff: Double) {
            self.maxAttempts = maxAttempts
            self.timeout = timeout
            self.firstBackoff = firstBackoff
            self.maxBackoff = maxBackoff
        }

        public init(_ c: DarkroomConfig.Webhook) {
            self.init(maxAttempts: c.maxAttempts, timeout: Double(c.timeout), maxBackoff: Double(c.maxBackoff))
        }
    }

    /// Told of each event's fate (and each retry): the daemon logs and counts.
    public enum Report: Sendable {
        case outcome(WebhookOutcome, jobID: String, event: EventKind, detail: String)
        case retrying(jobID: String, event: EventKind, attempt: Int, delay: Double, error: DeliveryError)
    }

    private struct Item: Sendable {
        let event: OutgoingEvent
        let hook: Webhook
        let delivery: String
    }

    private struct JobQueue {
        var items: [Item] = []
        var running = false
        var posted = 0
        /// An event failed: the rest are dropped.
        var broken = false
        /// The terminal event was queued: the entry goes once the queue is empty.
        var ended = false
    }

    private let settings: Settings
    private let secrets: [String: [UInt8]]
    private let http: HTTPClient
    private let report: @Sendable (Report) -> Void
    private let jobs = Locked<[String: JobQueue]>([:])
    private let outcomes = Locked<[WebhookOutcome: Int]>([:])
    private let tasks = WorkTracker()

    public init(settings: Settings, secrets: [String: [UInt8]], report: @escaping @Sendable (Report) -> Void) {
        self.settings = settings
        self.secrets = secrets
        self.http = HTTPClient(timeout: settings.timeout)
        self.report = report
    }

    /// Queues `event` for the job's webhook, if it wants this kind; returns at once.
    public func post(_ event: OutgoingEvent, to hook: Webhook) {
        guard hook.wants(event.kind) else { return }
        let jobID = event.jobID
        let start = jobs.withLock { jobs -> Bool in
            var q = jobs[jobID] ?? JobQueue()
            q.posted += 1
            q.items.append(Item(event: event, hook: hook, delivery: "\(jobID).\(q.posted)"))
            if event.kind.isTerminal { q.ended = true }
            let start = !q.running
            q.running = true
            jobs[jobID] = q
            return start
        }
        if start { tasks.run { await self.drain(jobID) } }
    }

    /// Posts the job's queued events one after the other until none is left.
    private func drain(_ jobID: String) async {
        while true {
            let next = jobs.withLock { jobs -> (Item, Bool)? in
                guard var q = jobs[jobID] else { return nil }
                guard !q.items.isEmpty else {
                    q.running = false
                    jobs[jobID] = q.ended ? nil : q
                    return nil
                }
                let item = q.items.removeFirst()
                jobs[jobID] = q
                return (item, q.broken)
            }
            guard let (item, broken) = next else { return }
            if broken {
                outcomes.withLock { $0[.dropped, default: 0] += 1 }
                report(.outcome(.dropped, jobID: jobID, event: item.event.kind, detail: "an earlier event of this job could not be delivered"))
                continue
            }
            let (outcome, detail) = await deliver(item)
            outcomes.withLock { $0[outcome, default: 0] += 1 }
            report(.outcome(outcome, jobID: jobID, event: item.event.kind, detail: detail))
            if outcome != .delivered { jobs.withLock { $0[jobID]?.broken = true } }
        }
    }

    /// One event, with retries.
    private func deliver(_ item: Item) async -> (WebhookOutcome, String) {
        guard let secret = secrets[item.hook.secretRef] else {
            return (.failed, "secret \(item.hook.secretRef) is not in webhook.secrets_file")
        }
        guard let url = URL(string: item.hook.url) else { return (.failed, "bad URL") }
        var attempt = 1
        while true {
            let timestamp = Int(Date().timeIntervalSince1970)
            let headers = WebhookSignature.headers(for: item.event, delivery: item.delivery, secret: secret, timestamp: timestamp)
            let failure: DeliveryError
            do throws(DeliveryError) {
                let response = try await http.send("POST", url, headers: headers, body: item.event.body)
                if (200..<300).contains(response.status) { return (.delivered, "HTTP \(response.status)") }
                let retry = response.status >= 500 || response.status == 408 || response.status == 429
                failure = DeliveryError(.http, "POST \(HTTPClient.shown(url)) answered HTTP \(response.status)", retryable: retry)
            } catch {
                failure = error
            }
            guard failure.retryable, attempt < settings.maxAttempts, !Task.isCancelled else {
                let why = failure.retryable ? "gave up after \(attempt) attempt(s)" : "not retried"
                return (.failed, "\(failure.message) (\(why))")
            }
            let delay = min(settings.maxBackoff, settings.firstBackoff * Double(1 << min(attempt - 1, 20)))
            report(.retrying(jobID: item.event.jobID, event: item.event.kind, attempt: attempt, delay: delay, error: failure))
            do {
                try await Task.sleep(for: .seconds(delay))
            } catch {
                return (.failed, "\(failure.message) (stopped while waiting to retry)")
            }
            attempt += 1
        }
    }

    /// Events by outcome since the start (what the counters count, for status and tests).
    public var tally: [WebhookOutcome: Int] { outcomes.value }

    /// Posts still queued or in flight (jobs with something left).
    public var pending: Int { jobs.withLock { $0.values.reduce(0) { $0 + $1.items.count + ($1.running ? 1 : 0) } } }

    /// Waits for every queued post until `deadline`; then cancels what is left (its events are given up).
    public func finish(deadline: Date) async {
        while tasks.count > 0, Date() < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        tasks.cancelAll()
        await tasks.waitAll()
    }
}
