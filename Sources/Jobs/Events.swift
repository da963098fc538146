// Events a worker publishes to a job's reply_to queue, encoded exactly as the contract says,
// and decoded back (for `darkroom submit/watch` and tests). JSON bodies are compact with the
// fields in contract order; a consumer must ignore fields it does not know.

import Foundation

public enum EventKind: String, Equatable, Sendable, CaseIterable {
    case accepted, progress, image, completed, failed

    /// `completed` and `failed` end a job's event stream.
    public var isTerminal: Bool { self == .completed || self == .failed }
}

/// A message ready to publish: body, content type and headers. The publisher adds the
/// rest (default exchange, routing key = reply_to, correlation_id, persistent).
public struct OutgoingEvent: Equatable, Sendable {
    public var kind: EventKind
    public var jobID: String
    public var body: [UInt8]
    public var contentType: String
    /// `darkroom-event` and `darkroom-job` first, then the kind's own headers.
    public var headers: [Header]

    /// An event exactly as it was sent (e.g. read back from a worker's results kept on disk).
    public init(kind: EventKind, jobID: String, body: [UInt8], contentType: String, headers: [Header]) {
        self.kind = kind
        self.jobID = jobID
        self.body = body
        self.contentType = contentType
        self.headers = headers
    }

    init(kind: EventKind, jobID: String, body: [UInt8], contentType: String = "application/json", extra: [Header] = []) {
        self.kind = kind
        self.jobID = jobID
        self.body = body
        self.contentType = contentType
        headers = [Header(HeaderName.event, .string(kind.rawValue)), Header(HeaderName.job, .string(jobID))] + extra
    }

    init(kind: EventKind, jobID: String, json members: [JSONMember]) {
        self.init(kind: kind, jobID: jobID,
                  body: JSONWriter.write(.object([JSONMember("v", .int(1)), JSONMember("id", .string(jobID))] + members)))
    }
}

/// `accepted`: the job entered a batch.
public struct AcceptedEvent: Equatable, Sendable {
    public var id: String
    public var worker: String
    public var sizeClass: String
    public var batch: String
    public var batchSize: Int
    public var queuedMs: Int64

    public init(id: String, worker: String, sizeClass: String, batch: String, batchSize: Int, queuedMs: Int64) {
        self.id = id
        self.worker = worker
        self.sizeClass = sizeClass
        self.batch = batch
        self.batchSize = batchSize
        self.queuedMs = queuedMs
    }

    public func encoded() -> OutgoingEvent {
        OutgoingEvent(kind: .accepted, jobID: id, json: [
            JSONMember("worker", .string(worker)), JSONMember("class", .string(sizeClass)),
            JSONMember("batch", .string(batch)), JSONMember("batch_size", .int(batchSize)),
            JSONMember("queued_ms", .int(queuedMs)),
        ])
    }
}

/// `progress`: step `step` of `steps` is done (1-based; the last one is `steps`).
public struct ProgressEvent: Equatable, Sendable {
    public var id: String
    public var step: Int
    public var steps: Int
    public var elapsedMs: Int64
    public var etaMs: Int64
    /// A small PNG of the current latent; base64 in the JSON body.
    public var preview: [UInt8]?

    public init(id: String, step: Int, steps: Int, elapsedMs: Int64, etaMs: Int64, preview: [UInt8]? = nil) {
        self.id = id
        self.step = step
        self.steps = steps
        self.elapsedMs = elapsedMs
        self.etaMs = etaMs
        self.preview = preview
    }

    public func encoded() -> OutgoingEvent {
        var m = [
            JSONMember("step", .int(step)), JSONMember("steps", .int(steps)),
            JSONMember("elapsed_ms", .int(elapsedMs)), JSONMember("eta_ms", .int(etaMs)),
        ]
        if let preview { m.append(JSONMember("preview", .string(Data(preview).base64EncodedString()))) }
        return OutgoingEvent(kind: .progress, jobID: id, json: m)
    }
}

/// Where a stored PNG went (`output.store` "file" or "s3"), carried by the `image` event instead of the bytes.
public struct StoredResult: Equatable, Sendable {
    public var store: ResultStore
    /// s3: the object's URL; file: the file's absolute path.
    public var location: String
    /// s3: the object key in the bucket; nil for file.
    public var key: String?
    /// SHA-256 of the PNG, lower-case hex.
    public var sha256: String
    /// The PNG's size in bytes.
    public var bytes: Int

    public init(store: ResultStore, location: String, key: String? = nil, sha256: String, bytes: Int) {
        self.store = store
        self.location = location
        self.key = key
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// `image`: one PNG; the body is the PNG itself, or, when the job's results are stored, a JSON object
/// saying where (`stored`).
public struct ImageEvent: Equatable, Sendable {
    public var id: String
    public var index: Int
    public var seed: UInt64
    public var width: Int
    public var height: Int
    /// The PNG (empty when `stored`).
    public var png: [UInt8]
    public var stored: StoredResult?

    public init(id: String, index: Int, seed: UInt64, width: Int, height: Int, png: [UInt8], stored: StoredResult? = nil) {
        self.id = id
        self.index = index
        self.seed = seed
        self.width = width
        self.height = height
        self.png = png
        self.stored = stored
    }

    /// The same image, stored: the bytes replaced by where they went.
    public func storing(_ result: StoredResult) -> ImageEvent {
        ImageEvent(id: id, index: index, seed: seed, width: width, height: height, png: [], stored: result)
    }

    public func encoded() -> OutgoingEvent {
        let headers = [
            Header(HeaderName.index, .int(Int64(index))), Header(HeaderName.seed, .string(String(seed))),
            Header(HeaderName.width, .int(Int64(width))), Header(HeaderName.height, .int(Int64(height))),
        ]
        guard let stored else {
            return OutgoingEvent(kind: .image, jobID: id, body: png, contentType: "image/png", extra: headers)
        }
        var m = [
            JSONMember("v", .int(1)), JSONMember("id", .string(id)), JSONMember("index", .int(index)),
            JSONMember("seed", .int(seed)), JSONMember("width", .int(width)), JSONMember("height", .int(height)),
            JSONMember("store", .string(stored.store.rawValue)),
        ]
        if stored.store == .s3 {
            m.append(JSONMember("url", .string(stored.location)))
            if let key = stored.key { m.append(JSONMember("key", .string(key))) }
        } else {
            m.append(JSONMember("path", .string(stored.location)))
        }
        m += [JSONMember("sha256", .string(stored.sha256)), JSONMember("bytes", .int(stored.bytes))]
        return OutgoingEvent(kind: .image, jobID: id, body: JSONWriter.write(.object(m)), extra: headers)
    }
}

/// Milliseconds spent per stage of a job.
public struct Timings: Equatable, Sendable {
    public var queue: Int64
    public var denoise: Int64
    public var decode: Int64
    public var encode: Int64
    public var total: Int64

    public init(queue: Int64, denoise: Int64, decode: Int64, encode: Int64, total: Int64) {
        self.queue = queue
        self.denoise = denoise
        self.decode = decode
        self.encode = encode
        self.total = total
    }
}

/// `completed`: after the last image.
public struct CompletedEvent: Equatable, Sendable {
    public var id: String
    public var images: Int
    /// One per image, in image order.
    public var seeds: [UInt64]
    public var timings: Timings

    public init(id: String, seeds: [UInt64], timings: Timings) {
        self.init(id: id, images: seeds.count, seeds: seeds, timings: timings)
    }

    public init(id: String, images: Int, seeds: [UInt64], timings: Timings) {
        self.id = id
        self.images = images
        self.seeds = seeds
        self.timings = timings
    }

    public func encoded() -> OutgoingEvent {
        OutgoingEvent(kind: .completed, jobID: id, json: [
            JSONMember("images", .int(images)), JSONMember("seeds", .array(seeds.map { .int($0) })),
            JSONMember("timings_ms", .object([
                JSONMember("queue", .int(timings.queue)), JSONMember("denoise", .int(timings.denoise)),
                JSONMember("decode", .int(timings.decode)), JSONMember("encode", .int(timings.encode)),
                JSONMember("total", .int(timings.total)),
            ])),
        ])
    }
}

/// `failed`: instead of `completed`, at any point.
public struct FailedEvent: Equatable, Sendable {
    public var id: String
    public var failure: JobFailure

    public init(id: String, failure: JobFailure) {
        self.id = id
        self.failure = failure
    }

    public init(_ rejection: JobRejection) {
        self.init(id: rejection.jobID, failure: rejection.failure)
    }

    public func encoded() -> OutgoingEvent {
        OutgoingEvent(kind: .failed, jobID: id, json: [
            JSONMember("code", .string(failure.code.rawValue)), JSONMember("message", .string(failure.message)),
            JSONMember("retryable", .bool(failure.retryable)),
        ])
    }
}
