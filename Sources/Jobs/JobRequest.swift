// The v1 job body as sent: every field optional, types checked, nothing resolved yet.
// `parse` enforces the JSON-level rules (JSON object, `v`, unknown and duplicate fields, field
// types); `resolve` (JobValidation.swift) applies the rest against a Catalog.

import Foundation

public struct JobRequest: Equatable, Sendable {
    public var v: Int64?
    public var id: String?
    public var model: String?
    public var prompt: String?
    public var classID: Int64?
    public var negativePrompt: String?
    /// Text models: generate at the model's nearest trained aspect-ratio bin and resize back (diffusers'
    /// `use_resolution_binning`); absent: the model folder's default.
    public var useResolutionBinning: Bool?
    public var width: Int64?
    public var height: Int64?
    public var steps: Int64?
    public var guidance: Double?
    /// Step caching (FirstBlockCache): 0 or absent = off.
    public var cacheThreshold: Double?
    public var sampler: String?
    public var seed: UInt64?
    public var seedRef: String?
    public var count: Int64?
    public var preview: Bool?
    public var progressEvery: Int64?
    public var saveSeedAs: String?
    /// RFC 3339 text, as sent.
    public var deadline: String?
    /// Where the events are also posted (JobDelivery.swift).
    public var webhook: WebhookRequest?
    /// Where the PNGs go.
    public var output: OutputRequest?

    public init() {}

    /// The body's field names, in contract order.
    public static let fieldNames = [
        "v", "id", "model", "prompt", "class_id", "negative_prompt", "use_resolution_binning", "width", "height", "steps",
        "guidance", "cache_threshold", "sampler", "seed", "seed_ref", "count", "preview", "progress_every",
        "save_seed_as", "deadline", "webhook", "output",
    ]

    /// Parses a job body. A body that is not JSON or not a JSON object is rejected with
    /// `isPoison`; every other problem is an ordinary `invalid_request` (or `unsupported` for a
    /// `v` other than 1). The rejection carries the body's `id` when valid, else `fallbackID`.
    /// JSON `null` counts as an absent field.
    public static func parse(body: [UInt8], fallbackID: String = "") throws(JobRejection) -> JobRequest {
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw JobRejection(jobID: fallbackID, failure: JobFailure(.invalidRequest,
                "the job body is not JSON: \(error.message) at byte \(error.offset)"), isPoison: true)
        }
        guard case .object(let members) = root else {
            throw JobRejection(jobID: fallbackID, failure: JobFailure(.invalidRequest,
                "the job body must be a JSON object, got \(root.typeName)"), isPoison: true)
        }
        var jobID = fallbackID
        if case .string(let s)? = members.first(where: { $0.key == "id" })?.value, JobID.isValid(s) { jobID = s }
        do {
            return try JobRequest(members: members)
        } catch {
            throw JobRejection(jobID: jobID, failure: error)
        }
    }

    private init(members: [JSONMember]) throws(JobFailure) {
        var fields: [String: JSONValue] = [:]
        for m in members {
            if fields[m.key] != nil {
                throw JobFailure(.invalidRequest, "field \(quoted(m.key)) appears more than once")
            }
            fields[m.key] = m.value
        }
        // The version first: a newer contract may have fields this one does not know.
        if let v = fields["v"], v != .null {
            guard v.isIntegerLiteral, let n = v.int64 else {
                throw JobFailure(.invalidRequest, "field \"v\" must be the integer 1, got \(v.described)")
            }
            guard n == 1 else {
                throw JobFailure(.unsupported, "contract version v=\(n) is not supported; this worker speaks v=1")
            }
            self.v = n
        }
        for m in members where !Self.fieldNames.contains(m.key) {
            var message = "unknown field \(quoted(m.key))"
            if let near = Self.nearestField(to: m.key) { message += " (did you mean \"\(near)\"?)" }
            message += "; the v1 fields are: " + Self.fieldNames.joined(separator: ", ")
            throw JobFailure(.invalidRequest, message)
        }
        func present(_ key: String) -> JSONValue? {
            guard let v = fields[key], v != .null else { return nil }
            return v
        }
        func string(_ key: String) throws(JobFailure) -> String? {
            guard let v = present(key) else { return nil }
            guard case .string(let s) = v else {
                throw JobFailure(.invalidRequest, "field \"\(key)\" must be a string, got \(v.described)")
            }
            return s
        }
        func int(_ key: String) throws(JobFailure) -> Int64? {
            guard let v = present(key) else { return nil }
            guard v.isIntegerLiteral else {
                throw JobFailure(.invalidRequest,
                    "field \"\(key)\" must be an integer (written without fraction or exponent), got \(v.described)")
            }
            guard let n = v.int64 else {
                throw JobFailure(.invalidRequest, "field \"\(key)\" is out of range, got \(v.described)")
            }
            return n
        }
        func bool(_ key: String) throws(JobFailure) -> Bool? {
            guard let v = present(key) else { return nil }
            guard case .bool(let b) = v else {
                throw JobFailure(.invalidRequest, "field \"\(key)\" must be true or false, got \(v.described)")
            }
            return b
        }
        id = try string("id")
        model = try string("model")
        prompt = try string("prompt")
        classID = try int("class_id")
        negativePrompt = try string("negative_prompt")
        useResolutionBinning = try bool("use_resolution_binning")
        width = try int("width")
        height = try int("height")
        steps = try int("steps")
        if let g = present("guidance") {
            guard case .number(let literal) = g, let d = Double(literal), d.isFinite else {
                throw JobFailure(.invalidRequest, "field \"guidance\" must be a number from 0 to 30, got \(g.described)")
            }
            guidance = d
        }
        if let t = present("cache_threshold") {
            guard case .number(let literal) = t, let d = Double(literal), d.isFinite else {
                throw JobFailure(.invalidRequest, "field \"cache_threshold\" must be a number from 0 (off) to 1, got \(t.described)")
            }
            cacheThreshold = d
        }
        sampler = try string("sampler")
        if let s = present("seed") {
            guard s.isIntegerLiteral, case .number(let literal) = s, !literal.hasPrefix("-"), let n = UInt64(literal) else {
                throw JobFailure(.invalidRequest,
                    "field \"seed\" must be an integer from 0 to 18446744073709551615, got \(s.described)")
            }
            seed = n
        }
        seedRef = try string("seed_ref")
        count = try int("count")
        preview = try bool("preview")
        progressEvery = try int("progress_every")
        saveSeedAs = try string("save_seed_as")
        deadline = try string("deadline")
        if let w = present("webhook") { webhook = try WebhookRequest(w) }
        if let o = present("output") { output = try OutputRequest(o) }
    }

    /// The body as compact JSON, fields in contract order, absent fields left out.
    public func encodedBody() -> [UInt8] {
        var m: [JSONMember] = []
        func add(_ key: String, _ value: JSONValue?) { if let value { m.append(JSONMember(key, value)) } }
        add("v", .int(v ?? 1))
        add("id", id.map(JSONValue.string))
        add("model", model.map(JSONValue.string))
        add("prompt", prompt.map(JSONValue.string))
        add("class_id", classID.map { .int($0) })
        add("negative_prompt", negativePrompt.map(JSONValue.string))
        add("use_resolution_binning", useResolutionBinning.map(JSONValue.bool))
        add("width", width.map { .int($0) })
        add("height", height.map { .int($0) })
        add("steps", steps.map { .int($0) })
        add("guidance", guidance.map(JSONValue.double))
        add("cache_threshold", cacheThreshold.map(JSONValue.double))
        add("sampler", sampler.map(JSONValue.string))
        add("seed", seed.map { .int($0) })
        add("seed_ref", seedRef.map(JSONValue.string))
        add("count", count.map { .int($0) })
        add("preview", preview.map(JSONValue.bool))
        add("progress_every", progressEvery.map { .int($0) })
        add("save_seed_as", saveSeedAs.map(JSONValue.string))
        add("deadline", deadline.map(JSONValue.string))
        add("webhook", webhook?.json)
        add("output", output?.json)
        return JSONWriter.write(.object(m))
    }

    /// The known field closest to a misspelt one (edit distance at most 2).
    static func nearestField(to name: String) -> String? {
        let a = Array(name.lowercased())
        guard !a.isEmpty else { return nil }
        var best: (field: String, distance: Int)?
        for field in fieldNames {
            let b = Array(field)
            var row = Array(0...b.count)
            for i in 1...a.count {
                var next = [i] + Array(repeating: 0, count: b.count)
                for j in 1...b.count {
                    next[j] = min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                row = next
            }
            let d = row[b.count]
            if d <= 2, d < (best?.distance ?? Int.max) { best = (field, d) }
        }
        return best?.field
    }
}

/// Job ids: 1 to 128 characters of A-Z a-z 0-9 . _ : -
public enum JobID {
    public static func isValid(_ s: String) -> Bool {
        let u = s.utf8
        return (1...128).contains(u.count) && u.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
    }

    /// A fresh id for a job that came without one: "job-" and a random UUID.
    public static func generate() -> String {
        "job-" + UUID().uuidString.lowercased()
    }

    static let rule = "1 to 128 characters of A-Z a-z 0-9 . _ : -"
}

/// Seed names (`save_seed_as`, `seed_ref`): 1 to 64 characters of A-Z a-z 0-9 _ - and ".",
/// where "." is allowed only inside (never first or last), so "." and ".." and any path
/// are impossible.
public enum SeedName {
    public static func isValid(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...64).contains(u.count), u.first != UInt8(ascii: "."), u.last != UInt8(ascii: ".") else { return false }
        return u.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
        }
    }

    static let rule = "1 to 64 characters of A-Z a-z 0-9 _ - and \".\" (never first or last)"
}
