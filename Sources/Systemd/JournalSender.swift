// Sends one journal entry through libsystemd's sd_journal_sendv, to journald's socket. libsystemd returns
// 0 even when that socket does not exist (docs/engine.md §7.2), so the socket's presence is checked before
// every send and a missing socket is reported as a failure, never as success.
import CSystemd
import Core
import Glibc

/// Why an entry did not reach the journal.
public struct JournalSendError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case socketMissing = "journal_socket_missing"
        case sendFailed = "journal_send_failed"
    }
    public let code: Code
    public let errno: Int32

    public var message: String {
        switch code {
        case .socketMissing:
            return "no journald socket at \(JournalSender.socketPath); the line goes to stderr"
        case .sendFailed:
            return "sending to \(JournalSender.socketPath) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }
}

public struct JournalSender: Sendable {
    /// Where journald listens for native entries (the path libsystemd sends to).
    public static let socketPath = "/run/systemd/journal/socket"

    public init() {}

    /// Whether journald's socket exists now.
    public static var isAvailable: Bool {
        var info = stat()
        guard stat(socketPath, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Sends one entry. Fails when the socket is missing or the send fails; the caller then writes the
    /// line elsewhere.
    public func send(_ fields: [JournalField]) -> Result<Void, JournalSendError> {
        guard Self.isAvailable else { return .failure(JournalSendError(code: .socketMissing, errno: ENOENT)) }
        let rc = Self.sendv(fields)
        if rc < 0 { return .failure(JournalSendError(code: .sendFailed, errno: -rc)) }
        return .success(())
    }

    /// sd_journal_sendv with one iovec per `NAME=value` (libsystemd handles values with newlines).
    static func sendv(_ fields: [JournalField]) -> Int32 {
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
