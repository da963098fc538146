import Core
import Foundation
import Jobs

/// Finished results kept on disk until their terminal event is confirmed.
///
/// A batch can finish while the broker is away: its events cannot be confirmed, the job is not
/// acked, and the broker delivers it again. Before a finished job's events go out, they (the image
/// events with their PNGs, and `completed`) are written here; once the terminal event is confirmed
/// they are removed. A redelivered job whose result is here is answered from it instead of being
/// computed again. The key is the job id and a hash of the message body (its parameters), so another
/// job reusing an id never gets these images. One file per job under `<state_dir>/results`, written
/// to a temporary name, fsynced and renamed (a torn file fails its checksum and is ignored); shared by
/// the workers of a machine like the ledger. Bounded: files older than `maxAge` go, and the oldest go
/// while the folder holds more than `maxBytes`.
public final class KeptResults: Sendable {
    public let directory: String
    public let maxBytes: Int
    public let maxAge: TimeInterval

    private static let magic = Array("darkroom-result 1\n".utf8)

    public init(directory: String, maxBytes: Int = 512 << 20, maxAge: TimeInterval = 24 * 3600) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WorkerError(.state, "cannot create the results folder \(directory): \(error.localizedDescription)")
        }
        self.directory = directory
        self.maxBytes = maxBytes
        self.maxAge = maxAge
        prune()
    }

    /// The key of a job's result: its id and a hash of the message body.
    public static func key(jobID: String, body: [UInt8]) -> String {
        jobID + "." + FNV1a.hex(body)
    }

    private func path(_ key: String) -> String { directory + "/" + key + ".result" }

    /// Writes a finished job's events durably (fsync, then rename), then applies the bounds.
    public func save(key: String, events: [OutgoingEvent]) throws {
        var out = Self.magic
        Self.put(UInt32(events.count), &out)
        for e in events {
            Self.put(Array(e.kind.rawValue.utf8), &out)
            Self.put(Array(e.jobID.utf8), &out)
            Self.put(e.body, &out)
            Self.put(Array(e.contentType.utf8), &out)
            Self.put(UInt32(e.headers.count), &out)
            for h in e.headers {
                Self.put(Array(h.key.utf8), &out)
                switch h.value {
                case .string(let s): out.append(0); Self.put(Array(s.utf8), &out)
                case .int(let i): out.append(1); Self.put(UInt64(bitPattern: i), &out)
                }
            }
        }
        Self.put(FNV1a.hash(out), &out)
        let final = path(key), temporary = final + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WorkerError(.state, "cannot write \(temporary): \(errnoText())") }
        let written = out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == out.count, synced, rename(temporary, final) == 0 else {
            let why = errnoText()
            unlink(temporary)
            throw WorkerError(.state, "cannot write the result \(final): \(why)")
        }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
        prune()
    }

    /// The events kept for `key`, or nil when there are none (or the file is torn or unreadable; then it is removed).
    public func load(key: String) -> [OutgoingEvent]? {
        guard let data = FileManager.default.contents(atPath: path(key)) else { return nil }
        if let events = Self.decode([UInt8](data)) { return events }
        unlink(path(key))
        return nil
    }

    /// Drops a result (its terminal event is confirmed).
    public func remove(key: String) {
        unlink(path(key))
    }

    /// The keys of the results on disk.
    public var keys: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".result") }.map { String($0.dropLast(7)) }.sorted()
    }

    /// Removes results older than `maxAge` (and temporary files of writers that died), then the oldest
    /// while the folder holds more than `maxBytes`.
    public func prune(now: Date = Date()) {
        let fm = FileManager.default
        var files: [(path: String, date: Date, size: Int)] = []
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            let p = directory + "/" + name
            guard let a = try? fm.attributesOfItem(atPath: p), let date = a[.modificationDate] as? Date else { continue }
            let size = (a[.size] as? NSNumber)?.intValue ?? 0
            if now.timeIntervalSince(date) > maxAge || (name.contains(".tmp-") && now.timeIntervalSince(date) > 600) {
                unlink(p)
            } else if name.hasSuffix(".result") {
                files.append((p, date, size))
            }
        }
        var total = files.reduce(0) { $0 + $1.size }
        for f in files.sorted(by: { ($0.date, $0.path) < ($1.date, $1.path) }) where total > maxBytes {
            unlink(f.path)
            total -= f.size
        }
    }

    // MARK: - format: magic, count, events (length-prefixed fields, little-endian), FNV-1a of all before it

    private static func put(_ v: UInt32, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    private static func put(_ v: UInt64, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    private static func put(_ bytes: [UInt8], _ out: inout [UInt8]) { put(UInt32(bytes.count), &out); out += bytes }

    static func decode(_ b: [UInt8]) -> [OutgoingEvent]? {
        guard b.count >= magic.count + 12, Array(b.prefix(magic.count)) == magic else { return nil }
        var at = magic.count
        func u32() -> UInt32? {
            guard at + 4 <= b.count else { return nil }
            defer { at += 4 }
            return b[at..<(at + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        func u64() -> UInt64? {
            guard at + 8 <= b.count else { return nil }
            defer { at += 8 }
            return b[at..<(at + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        func bytes() -> [UInt8]? {
            guard let n = u32().map(Int.init), at + n <= b.count else { return nil }
            defer { at += n }
            return Array(b[at..<(at + n)])
        }
        func text() -> String? { bytes().map { String(decoding: $0, as: UTF8.self) } }
        let body = b.count - 8
        let stored = b[body...].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard stored == FNV1a.hash(b[..<body]), let count = u32() else { return nil }
        var events: [OutgoingEvent] = []
        for _ in 0..<count {
            guard let kind = text().flatMap(EventKind.init(rawValue:)), let id = text(), let payload = bytes(),
                  let type = text(), let n = u32() else { return nil }
            var headers: [Header] = []
            for _ in 0..<n {
                guard let key = text(), at < body else { return nil }
                let tag = b[at]
                at += 1
                switch tag {
                case 0: guard let s = text() else { return nil }; headers.append(Header(key, .string(s)))
                case 1: guard let i = u64() else { return nil }; headers.append(Header(key, .int(Int64(bitPattern: i))))
                default: return nil
                }
            }
            events.append(OutgoingEvent(kind: kind, jobID: id, body: payload, contentType: type, headers: headers))
        }
        return at == body ? events : nil
    }
}
