// safetensors writer (F32 only): header JSON padded with spaces so 8 + N ≡ 0 mod 8, tensors in the given
// order, little-endian. The file appears atomically (temp file in the same folder + rename).
// Format: huggingface/safetensors safetensors/src/tensor.rs `serialize`; docs/engine.md §1.1.
import Foundation

public enum SafeTensorsWriter {
    public typealias Entry = (name: String, shape: [Int], data: [Float])

    /// Serialises `tensors` (float32) plus optional string `metadata` into safetensors bytes.
    public static func encode(tensors: [Entry], metadata: [String: String] = [:]) throws -> Data {
        var seen = Set<String>()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { "\(quote($0)):\(quote(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(m)}")
        }
        var offset = 0
        for t in tensors {
            guard t.name != "__metadata__", !seen.contains(t.name) else {
                throw WeightError(.writeFailed, file: t.name, "duplicate or reserved tensor name")
            }
            seen.insert(t.name)
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.data.count else {
                throw WeightError(.writeFailed, file: t.name, "shape \(t.shape) does not hold \(t.data.count) values")
            }
            let end = offset + 4 * t.data.count
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(quote(t.name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in tensors {
            t.data.withUnsafeBufferPointer { buf in
                #if _endian(big)
                for v in buf { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
                #else
                out.append(UnsafeBufferPointer(start: buf.baseAddress, count: buf.count))
                #endif
            }
        }
        return out
    }

    /// Writes the file atomically: a temporary file next to `url`, then rename over it.
    public static func write(tensors: [Entry], metadata: [String: String] = [:], to url: URL) throws {
        let data = try encode(tensors: tensors, metadata: metadata)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let name = url.lastPathComponent
        // Written and flushed to disk before the rename makes the file visible; on any failure the
        // temporary file is removed (a full disk must not keep partial files) and errno is named.
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw WeightError(.writeFailed, file: name, "cannot create a temporary file in \(dir.path): \(String(cString: strerror(errno)))")
        }
        let failure: String? = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> String? in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return String(cString: strerror(errno)) }
                offset += n
            }
            return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
        }
        close(fd)
        if let failure {
            unlink(tmp.path)
            throw WeightError(.writeFailed, file: name, "cannot write \(data.count) bytes in \(dir.path): \(failure)")
        }
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
