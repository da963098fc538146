// The `file` result store: `<output.dir>/<job>/<index>.png` on a shared filesystem, written to a temporary
// name in the same folder and renamed into place, so a reader never sees half a PNG.
import Foundation
import Glibc

public struct FileStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(jobID: String, index: Int) -> String {
        "\(directory)/\(jobID)/\(index).png"
    }

    /// Writes `png` atomically; returns its path.
    public func write(jobID: String, index: Int, png: [UInt8]) throws(DeliveryError) -> String {
        let folder = "\(directory)/\(jobID)"
        let final = path(jobID: jobID, index: index)
        let temp = "\(folder)/.\(index).png.tmp-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw posixError("cannot create \(temp)") }
            defer { close(fd) }
            var written = 0
            while written < png.count {
                let n = png.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, png.count - written) }
                if n < 0 { if errno == EINTR { continue }; unlink(temp); throw posixError("cannot write \(temp)") }
                written += n
            }
            guard fsync(fd) == 0 else { unlink(temp); throw posixError("cannot flush \(temp)") }
            guard rename(temp, final) == 0 else { unlink(temp); throw posixError("cannot rename \(temp) to \(final)") }
        } catch let e as DeliveryError {
            throw e
        } catch {
            throw DeliveryError(.storage, "cannot write \(final): \(error.localizedDescription)", retryable: true)
        }
        return final
    }

    private func posixError(_ what: String) -> DeliveryError {
        let code = errno
        // A full or read-only disk may be fixed by the operator; retrying soon rarely helps but costs little.
        return DeliveryError(.storage, "\(what): \(String(cString: strerror(code)))", retryable: code != EACCES && code != EROFS)
    }
}
