// safetensors writer (F32 from arrays, or any dtype from raw bytes made per tensor): header JSON padded with spaces so 8 + N ≡ 0 mod 8, tensors in the given
// order, little-endian. The file appears atomically (temp file in the same folder + rename).
// Format: huggingface/safetensors safetensors/src/tensor.rs `serialize`; docs/engine.md §1.1.
import Foundation

public enum SafeTensorsWriter {
    public typealias Entry = (name: String, shape: [Int], data: [Float])

    /// One tensor of any dtype whose little-endian bytes are made only when the file is written (`bytes`),
    /// so a large checkpoint is rewritten one tensor at a time.
    public struct RawEntry {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        public let bytes: () throws -> [UInt8]
        public init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: @escaping () throws -> [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    /// Serialises `tensors` (float32) plus optional string `metadata` into safetensors bytes.
    public static func encode(tensors: [Entry], metadata: [String: String] = [:]) throws -> Data {
        for t in tensors where !(t.shape.allSatisfy({ $0 >= 0 }) && t.shape.reduce(1, *) == t.data.count) {
            throw WeightError(.writeFailed, file: t.name, "shape \(t.shape) does not hold \(t.data.count) values")
        }
        let raw = tensors.map { t in RawEntry(name: t.name, dtype: .F32, shape: t.shape) { littleEndianBytes(t.data) } }
        var out = Data(try header(raw, metadata: metadata))
        for t in raw { out.append(contentsOf: try t.bytes()) }
        return out
    }

    /// Writes the file atomically: a temporary file next to `url`, then rename over it.
    public static func write(tensors: [Entry], metadata: [String: String] = [:], to url: URL) throws {
        let data = try encode(tensors: tensors, metadata: metadata)
        try writeAtomically(to: url, totalBytes: data.count) { put in try put([UInt8](data)) }
    }

    /// Writes `entries` (any dtypes, bytes made one tensor at a time) atomically to `url`.
    public static func write(entries: [RawEntry], metadata: [String: String] = [:], to url: URL) throws {
        let head = try header(entries, metadata: metadata)
        let total = head.count + entries.reduce(0) { $0 + $1.byteCount }
        try writeAtomically(to: url, totalBytes: total) { put in
            try put(head)
            for e in entries {
                let bytes = try e.bytes()
                guard bytes.count == e.byteCount else {
                    throw WeightError(.writeFailed, file: url.lastPathComponent,
                                      "tensor \(e.name) produced \(bytes.count) bytes, its shape \(e.shape) of \(e.dtype.rawValue) needs \(e.byteCount)")
                }
                try put(bytes)
            }
        }
    }

    /// The 8-byte length and the JSON header (padded with spaces so 8 + N ≡ 0 mod 8) for `entries` in order.
    static func header(_ entries: [RawEntry], metadata: [String: String]) throws -> [UInt8] {
        var seen = Set<String>()
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(quote($0)):\(quote(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(m)}")
        }
        var offset = 0
        for t in entries {
            guard t.name != "__metadata__", !seen.contains(t.name) else {
                throw WeightError(.writeFailed, file: t.name, "duplicate or reserved tensor name")
            }
            seen.insert(t.name)
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw WeightError(.writeFailed, file: t.name, "negative dimension in shape \(t.shape)")
            }
            let end = offset + t.byteCount
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(quote(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var headerBytes = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        return out + headerBytes
    }

    /// float32 values as little-endian bytes.
    public static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        #if _endian(big)
        return values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        #else
        return values.withUnsafeBytes { Array($0) }
        #endif
    }

    /// Creates a temporary file next to `url`, lets `body` write `totalBytes` through `put`, flushes it to disk
    /// and renames it over `url`. On any failure the temporary file is removed (a full disk must not keep
    /// partial files) and errno is named.
    static func writeAtomically(to url: URL, totalBytes: Int, _ body: ((([UInt8]) throws -> Void)) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let name = url.lastPathComponent
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightError(.writeFailed, file: name, "cannot create a temporary file in \(dir.path): \(String(cString: strerror(errno)))")
        }
        let put: ([UInt8]) throws -> Void = { bytes in
            let failure: String? = bytes.withUnsafeBytes { raw -> String? in
                var offset = 0
                while offset < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { return String(cString: strerror(errno)) }
                    offset += n
                }
                return nil
            }
            if let failure {
                throw WeightError(.writeFailed, file: name, "cannot write \(totalBytes) bytes in \(dir.path): \(failure)")
            }
        }
        do {
            try body(put)
            guard fsync(fd) == 0 else {
                throw WeightError(.writeFailed, file: name, "cannot write \(totalBytes) bytes in \(dir.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            close(fd)
            unlink(tmp.path)
            throw error
        }
        close(fd)
        guard rename(tmp.path, url.path) == 0 else {
            let err = String(cString: strerror(errno))
            unlink(tmp.path)
            throw WeightError(.writeFailed, file: name, "cannot rename into place: \(err)")
        }
    }

    /// JSON string literal.
    static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 { r += String(format: "\\u%04x", u.value) } else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }
}
