// Decoding events from a reply queue (the CLI and tests). Lenient where the contract allows
// growth (unknown JSON fields are ignored), strict on what it fixes (kinds, types, headers).

import Core
import Foundation

public enum JobEvent: Equatable, Sendable {
    case accepted(AcceptedEvent)
    case progress(ProgressEvent)
    case image(ImageEvent)
    case completed(CompletedEvent)
    case failed(FailedEvent)

    public var kind: EventKind {
        switch self {
        case .accepted: return .accepted
        case .progress: return .progress
        case .image: return .image
        case .completed: return .completed
        case .failed: return .failed
        }
    }

    public var jobID: String {
        switch self {
        case .accepted(let e): return e.id
        case .progress(let e): return e.id
        case .image(let e): return e.id
        case .completed(let e): return e.id
        case .failed(let e): return e.id
        }
    }

    public func encoded() -> OutgoingEvent {
        switch self {
        case .accepted(let e): return e.encoded()
        case .progress(let e): return e.encoded()
        case .image(let e): return e.encoded()
        case .completed(let e): return e.encoded()
        case .failed(let e): return e.encoded()
        }
    }

    /// An event message that does not follow the contract.
    public struct DecodeError: CodedError, Equatable {
        public enum Code: String, Sendable { case badEvent = "bad_event" }
        public var code: Code { .badEvent }
        public var message: String
        init(_ message: String) { self.message = message }
    }

    public static func decode(_ event: OutgoingEvent) throws(DecodeError) -> JobEvent {
        try decode(body: event.body, contentType: event.contentType, headers: event.headers)
    }

    /// Decodes an event message from its body, content type and headers.
    public static func decode(body: [UInt8], contentType: String?, headers: [Header]) throws(DecodeError) -> JobEvent {
        guard let kindText = headers[header: HeaderName.event]?.stringValue else {
            throw DecodeError("event has no string header \(HeaderName.event)")
        }
        guard let kind = EventKind(rawValue: kindText) else {
            throw DecodeError("unknown event kind \(quoted(kindText)) in header \(HeaderName.event)")
        }
        if kind == .image, contentType != "application/json" {
            guard let id = headers[header: HeaderName.job]?.stringValue else {
                throw DecodeError("image event has no string header \(HeaderName.job)")
            }
            if let contentType, contentType != "image/png" {
                throw DecodeError("image event has content type \(quoted(contentType)), expected image/png")
            }
            func int(_ name: String) throws(DecodeError) -> Int {
                switch headers[header: name] {
                case .int(let i)?: return Int(i)
                case .string(let s)?: if let i = Int(s) { return i }
                case nil: break
                }
                throw DecodeError("image event needs integer header \(name)")
            }
            guard let seedText = headers[header: HeaderName.seed]?.description, let seed = UInt64(seedText) else {
                throw DecodeError("image event needs header \(HeaderName.seed) as a decimal uint64")
            }
            return .image(ImageEvent(id: id, index: try int(HeaderName.index), seed: seed,
                                     width: try int(HeaderName.width), height: try int(HeaderName.height), png: body))
        }

        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw DecodeError("\(kind.rawValue) event body is not JSON: \(error.message) at byte \(error.offset)")
        }
        let r = try Reader(kind: kind, root: root)
        let id = try r.string("id")
        switch kind {
        case .accepted:
            return .accepted(AcceptedEvent(id: id, worker: try r.string("worker"), sizeClass: try r.string("class"),
                                           batch: try r.batch(), batchSize: Int(try r.int("batch_size")),
                                           queuedMs: try r.int("queued_ms")))
        case .progress:
            var preview: [UInt8]?
            if r.has("preview") {
                guard let data = Data(base64Encoded: try r.string("preview")) else {
                    throw DecodeError("progress event field \"preview\" is not base64")
                }
                preview = [UInt8](data)
            }
            return .progress(ProgressEvent(id: id, step: Int(try r.int("step")), steps: Int(try r.int("steps")),
                                           elapsedMs: try r.int("elapsed_ms"), etaMs: try r.int("eta_ms"), preview: preview))
        case .completed:
            guard case .array(let items)? = r.fields["seeds"] else {
                throw DecodeError("completed event needs an array \"seeds\"")
            }
            var seeds: [UInt64] = []
            for item in items {
                guard item.isIntegerLiteral, let s = item.uint64 else {
                    throw DecodeError("completed event \"seeds\" holds \(item.described), not a uint64")
                }
                seeds.append(s)
            }
            guard let t = r.fields["timings_ms"] else { throw DecodeError("completed event needs \"timings_ms\"") }
            let tr = try Reader(kind: kind, root: t)
            let timings = Timings(queue: try tr.int("queue"), denoise: try tr.int("denoise"), decode: try tr.int("decode"),
                                  encode: try tr.int("encode"), total: try tr.int("total"))
            return .completed(CompletedEvent(id: id, images: Int(try r.int("images")), seeds: seeds, timings: timings))
        case .failed:
            let codeText = try r.string("code")
            guard let code = FailureCode(rawValue: codeText) else {
                throw DecodeError("failed event has unknown code \(quoted(codeText))")
            }
            guard case .bool(let retryable)? = r.fields["retryable"] else {
                throw DecodeError("failed event needs a boolean \"retryable\"")
            }
            return .failed(FailedEvent(id: id, failure: JobFailure(code, try r.string("message"), retryable: retryable)))
        case .image:
            // A stored result: where the PNG went instead of the PNG.
            let storeText = try r.string("store")
            guard let store = ResultStore(rawValue: storeText), store != .inline else {
                throw DecodeError("image event has unknown store \(quoted(storeText))")
            }
            guard let seed = r.fields["seed"]?.uint64 else { throw DecodeError("image event needs a uint64 \"seed\"") }
            let result = StoredResult(store: store, location: try r.string(store == .s3 ? "url" : "path"),
                                      key: store == .s3 ? try r.string("key") : nil, sha256: try r.string("sha256"),
                                      bytes: Int(try r.int("bytes")))
            return .image(ImageEvent(id: id, index: Int(try r.int("index")), seed: seed, width: Int(try r.int("width")),
                                     height: Int(try r.int("height")), png: [], stored: result))
        }
    }

    private struct Reader {
        var kind: EventKind
        var fields: [String: JSONValue] = [:]

        init(kind: EventKind, root: JSONValue) throws(DecodeError) {
            self.kind = kind
            guard case .object(let members) = root else {
                throw DecodeError("\(kind.rawValue) event body must be a JSON object, got \(root.typeName)")
            }
            for m in members { fields[m.key] = m.value }
        }

        func has(_ key: String) -> Bool { fields[key] != nil && fields[key] != .null }

        func string(_ key: String) throws(DecodeError) -> String {
            guard case .string(let s)? = fields[key] else {
                throw DecodeError("\(kind.rawValue) event needs a string \"\(key)\", got \(fields[key]?.described ?? "nothing")")
            }
            return s
        }

        func int(_ key: String) throws(DecodeError) -> Int64 {
            guard let v = fields[key], v.isIntegerLiteral, let i = v.int64 else {
                throw DecodeError("\(kind.rawValue) event needs an integer \"\(key)\", got \(fields[key]?.described ?? "nothing")")
            }
            return i
        }

        /// `batch` is a string id; an integer is accepted too.
        func batch() throws(DecodeError) -> String {
            if let v = fields["batch"], v.isIntegerLiteral, let i = v.int64 { return String(i) }
            return try string("batch")
        }
    }
}
