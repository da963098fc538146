// Sends one journal entry. On the real journald socket this goes through libsystemd's
// sd_journal_sendv; on any other socket (DARKROOM_JOURNAL_SOCKET, used by tests) it speaks journald's
// native datagram protocol itself. libsystemd returns 0 even when the socket does not exist
// (docs/engine.md §7.2), so the socket's presence is checked before every send and a missing socket is
// reported as a failure, never as success.
import CSystemd
import Glibc

/// Why an entry did not reach the journal.
public struct JournalSendError: Error, Equatable, CustomStringConvertible, Sendable {
    /// "journal_socket_missing" or "journal_send_failed".
    public let code: String
    public let errno: Int32
    public let socketPath: String

    public var description: String {
        switch code {
        case "journal_socket_missing":
            return "\(code): no journald socket at \(socketPath)"
        default:
            return "\(code): sending to \(socketPath) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }
}

public struct JournalSender: Sendable {
    /// Where journald listens for native messages.
    public static let defaultSocketPath = "/run/systemd/journal/socket"
    /// The environment variable that points the sender at another socket.
    public static let socketEnvironmentVariable = "DARKROOM_JOURNAL_SOCKET"

    public let socketPath: String

    public init(socketPath: String = JournalSender.defaultSocketPath) {
        self.socketPath = socketPath
    }

    /// `DARKROOM_JOURNAL_SOCKET` when set and non-empty, else journald's own socket.
    public static func fromEnvironment() -> JournalSender {
        if let raw = getenv(socketEnvironmentVariable), raw.pointee != 0 {
            return JournalSender(socketPath: String(cString: raw))
        }
        return JournalSender()
    }

    /// Whether a socket exists at the path now ("@name" abstract sockets are assumed present).
    public var isAvailable: Bool {
        if socketPath.hasPrefix("@") { return true }
        var info = stat()
        guard stat(socketPath, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Sends one entry. Fails when the socket is missing or the send fails; the caller then writes the
    /// line elsewhere.
    public func send(_ fields: [JournalField]) -> Result<Void, JournalSendError> {
        guard isAvailable else {
            return .failure(JournalSendError(code: "journal_socket_missing", errno: ENOENT, socketPath: socketPath))
        }
        if socketPath == Self.defaultSocketPath {
            let rc = Self.sendThroughLibsystemd(fields)
            if rc < 0 {
                return .failure(JournalSendError(code: "journal_send_failed", errno: -rc, socketPath: socketPath))
            }
            return .success(())
        }
        switch UnixDatagram.send(JournalFields.encodeNative(fields), to: socketPath) {
        case .success:
            return .success(())
        case .failure(let error):
            return .failure(JournalSendError(code: "journal_send_failed", errno: error.errno, socketPath: socketPath))
        }
    }

    /// sd_journal_sendv with one iovec per `NAME=value` (libsystemd handles values with newlines).
    static func sendThroughLibsystemd(_ fields: [JournalField]) -> Int32 {
        var buffer: [UInt8] = []
        var ranges: [(start: Int, count: Int)] = []
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.name.utf8)
            buffer.append(UInt8(ascii: "="))
            buffer.append(contentsOf: field.value.utf8)
            ranges.append((start, buffer.count - start))
        }
        return buffer.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -EINVAL }
            var iovecs = ranges.map { iovec(iov_base: base + $0.start, iov_len: $0.count) }
            return iovecs.withUnsafeMutableBufferPointer { iov in
                sd_journal_sendv(iov.baseAddress, Int32(iov.count))
            }
        }
    }
}
