// Test-side views of what systemd's libraries send: a real AF_UNIX datagram listener (sd_notify and journald
// entries arrive on one), journald's native datagram format decoded, and a private mount namespace in which a
// child process's libsystemd finds a test listener at journald's own socket path.
import Foundation
import Glibc
import Systemd

/// A bound AF_UNIX datagram socket in a fresh temporary folder (or in the abstract namespace); receives with
/// a timeout. SystemdTests and WorkerTests listen on it for sd_notify messages and journald entries.
public final class SystemdTestListener {
    public let directory: String
    /// The address as NOTIFY_SOCKET names it: a path, or "@name" for the abstract namespace.
    public let path: String
    public private(set) var fd: Int32 = -1

    /// - abstract: bind "@drsd-<random>-<name>" in the abstract namespace instead of a file.
    public init(name: String = "sock", abstract: Bool = false) throws {
        var template = Array("/tmp/drsd-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemdTestListenerError("mkdtemp failed: errno \(errno)")
        }
        directory = String(cString: made)
        path = abstract ? "@" + directory.dropFirst("/tmp/".count) + "-" + name : directory + "/" + name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SystemdTestListenerError("socket failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        // An abstract name is exactly its bytes after the family (no NUL padding), as systemd binds and sends.
        let length = abstract ? MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count
                              : MemoryLayout<sockaddr_un>.size
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(length))
            }
        }
        guard rc == 0 else { throw SystemdTestListenerError("bind \(path) failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// One datagram, or nil when none arrives within `seconds`.
    public func receive(seconds: Int = 5) -> [UInt8]? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return Array(buffer[0..<n])
    }

    /// One datagram as text.
    public func receiveText(seconds: Int = 5) -> String? {
        receive(seconds: seconds).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Stops listening but leaves the socket file behind: sends to it are then refused.
    public func closeKeepingFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit {
        if fd >= 0 { close(fd) }
        if path.hasPrefix("/") { unlink(path) }
        rmdir(directory)
    }
}

public struct SystemdTestListenerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// journald's native datagram as libsystemd writes it (systemd.io/JOURNAL_NATIVE_PROTOCOL): `NAME=value\n`
/// per field or, for a value containing a newline, `NAME\n` + the value's length as 64-bit little endian
/// + the value + `\n`. Returns nil on a malformed datagram.
public func decodeJournalDatagram(_ bytes: [UInt8]) -> [JournalField]? {
    var fields: [JournalField] = []
    var i = 0
    while i < bytes.count {
        guard let nameEnd = bytes[i...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") })
        else { return nil }
        let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
        if bytes[nameEnd] == UInt8(ascii: "=") {
            let valueStart = nameEnd + 1
            guard let end = bytes[valueStart...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            fields.append(JournalField(name: name, value: String(decoding: bytes[valueStart..<end], as: UTF8.self)))
            i = end + 1
        } else {
            let lengthStart = nameEnd + 1
            guard lengthStart + 8 <= bytes.count else { return nil }
            var length: UInt64 = 0
            for k in 0..<8 { length |= UInt64(bytes[lengthStart + k]) << (8 * UInt64(k)) }
            let valueStart = lengthStart + 8
            guard length <= UInt64(bytes.count - valueStart), valueStart + Int(length) < bytes.count,
                  bytes[valueStart + Int(length)] == UInt8(ascii: "\n")
            else { return nil }
            let value = bytes[valueStart..<(valueStart + Int(length))]
            fields.append(JournalField(name: name, value: String(decoding: value, as: UTF8.self)))
            i = valueStart + Int(length) + 1
        }
    }
    return fields
}

/// `command` run in a private user and mount namespace with a fresh tmpfs on /run, so that libsystemd in the
/// child sends journal entries to `journalDirectory`/socket (bound at /run/systemd/journal) instead of the
/// machine's journald; nil leaves no journald socket at all. The child's pid is the command's own (unshare
/// and sh exec into it), so signals reach it. Needs unprivileged user namespaces (or root).
public func inJournalNamespace(_ journalDirectory: String?, _ command: [String]) -> (executable: String, arguments: [String]) {
    let script = #"mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "#
        + #"{ [ -z "$1" ] || mount --bind "$1" /run/systemd/journal; } && shift && exec "$@""#
    return ("/usr/bin/unshare", ["--user", "--map-root-user", "--mount", "--", "/bin/sh", "-c", script, "sh",
                                 journalDirectory ?? ""] + command)
}

/// `command` run in a private user and mount namespace after the shell commands `setup` ran there as the namespace's
/// root (e.g. a read-only bind mount, a small tmpfs, a file bound over another): the mounts are the child's alone.
/// The child's pid is the command's own (unshare and sh exec into it). Needs unprivileged user namespaces (or root).
public func inPrivateMounts(_ setup: String, _ command: [String]) -> (executable: String, arguments: [String]) {
    ("/usr/bin/unshare", ["--user", "--map-root-user", "--mount", "--", "/bin/sh", "-c", "{ \(setup) ; } && exec \"$@\"", "sh"]
        + command)
}
