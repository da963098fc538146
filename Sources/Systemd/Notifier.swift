// sd_notify(3) for Type=notify services: READY=1, STATUS=, WATCHDOG=1, STOPPING=1, RELOADING=1,
// EXTEND_TIMEOUT_USEC=. The notify socket and the watchdog settings come from the environment the caller
// passes in (darkroomd: its own, once at start; a test: a dictionary), never from the process environment
// at each call: libsystemd's sd_notify reads $NOTIFY_SOCKET itself and cannot be given one, so the datagram
// is sent here (the protocol is one AF_UNIX datagram of `KEY=value` lines to $NOTIFY_SOCKET, a path, or
// "@name" in the abstract namespace; systemd's src/libsystemd/sd-daemon/sd-daemon.c, sd_pid_notify_with_fds).
// Every call returns at once, sending nothing, when there is no notify socket (not started by systemd), so the
// worker can call it unconditionally.
import Glibc

/// Sends service state notifications to systemd (or to any NOTIFY_SOCKET listener).
public struct Notifier: Sendable {
    /// `NOTIFY_SOCKET` as given (nil: notifications are off).
    public let socket: String?
    /// `WATCHDOG_USEC` when it applies to this process (`WATCHDOG_PID` unset or naming `pid`), else nil.
    public let watchdogUsec: UInt64?

    /// - environment: the process's variables as systemd set them (NOTIFY_SOCKET, WATCHDOG_USEC,
    ///   WATCHDOG_PID); darkroomd passes `ProcessInfo.processInfo.environment` once at start.
    /// - pid: this process, which `WATCHDOG_PID` must name for the watchdog to apply (sd_watchdog_enabled(3)).
    public init(environment: [String: String], pid: pid_t = getpid()) {
        let socket = environment["NOTIFY_SOCKET"] ?? ""
        self.socket = socket.isEmpty ? nil : socket
        var usec: UInt64?
        if let raw = environment["WATCHDOG_USEC"], let value = UInt64(raw), value > 0 {
            if let owner = environment["WATCHDOG_PID"] {
                usec = pid_t(owner) == pid ? value : nil
            } else {
                usec = value
            }
        }
        self.watchdogUsec = usec
    }

    /// A notifier that never sends (a worker embedded in another process, such as a test runner, must not
    /// speak for it).
    public static let silent = Notifier(environment: [:])

    /// Whether a notification would go anywhere at all (`NOTIFY_SOCKET` is set and not empty).
    public var isEnabled: Bool { socket != nil }

    /// `READY=1`, with an optional `STATUS=` in the same message. Send once the broker is connected,
    /// the topology declared and the model loaded.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        var lines = ["READY=1"]
        if let status { lines.append("STATUS=" + Self.oneLine(status)) }
        return send(lines)
    }

    /// `STATUS=<text>`: the one-line state `systemctl status` shows.
    @discardableResult
    public func status(_ text: String) -> Bool {
        send(["STATUS=" + Self.oneLine(text)])
    }

    /// `WATCHDOG=1`: the service is alive. Send at least every `watchdogInterval() / 2`.
    @discardableResult
    public func watchdog() -> Bool {
        send(["WATCHDOG=1"])
    }

    /// `STOPPING=1`, with an optional `STATUS=`: shutdown has begun.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        var lines = ["STOPPING=1"]
        if let status { lines.append("STATUS=" + Self.oneLine(status)) }
        return send(lines)
    }

    /// `RELOADING=1`, with an optional `STATUS=`: a SIGHUP reload has begun. Send `ready()` when it is done.
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        var lines = ["RELOADING=1"]
        if let status { lines.append("STATUS=" + Self.oneLine(status)) }
        return send(lines)
    }

    /// `EXTEND_TIMEOUT_USEC=<usec>`: asks for `usec` more microseconds before the start (or stop)
    /// timeout fires, e.g. while a large model loads. Repeat before it runs out.
    @discardableResult
    public func extendTimeout(usec: UInt64) -> Bool {
        send(["EXTEND_TIMEOUT_USEC=\(usec)"])
    }

    /// `EXTEND_TIMEOUT_USEC=` from a duration.
    @discardableResult
    public func extendTimeout(_ duration: Duration) -> Bool {
        extendTimeout(usec: Self.microseconds(duration))
    }

    /// Sends raw `KEY=value` assignments as one datagram. Returns whether it was delivered; `false` also
    /// when notifications are off, when the socket is not a path or "@name", or when nobody listens there.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard let socket else { return false }
        return Self.sendDatagram(Array(assignments.joined(separator: "\n").utf8), to: socket)
    }

    /// The watchdog interval systemd expects (`WatchdogSec=`), or nil when the watchdog is off for this
    /// process (`WATCHDOG_USEC` unset, or `WATCHDOG_PID` naming another process).
    public func watchdogInterval() -> Duration? {
        watchdogUsec.map { .microseconds(Int64(clamping: $0)) }
    }

    /// How often to send `WATCHDOG=1`: half the interval, as sd_watchdog_enabled(3) recommends.
    public func watchdogPingInterval() -> Duration? {
        watchdogInterval().map { $0 / 2 }
    }

    /// One datagram to an AF_UNIX address: "/path", or "@name" (abstract namespace: a leading NUL, and the
    /// address length counts only the name's bytes, as sd_notify does).
    static func sendDatagram(_ bytes: [UInt8], to address: String) -> Bool {
        guard var (addr, length) = unixAddress(address) else { return false }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let sent = bytes.withUnsafeBytes { body in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == bytes.count
    }

    /// The sockaddr_un for "/path" or "@name", or nil when the text is neither or too long for sun_path.
    static func unixAddress(_ address: String) -> (sockaddr_un, socklen_t)? {
        var bytes = Array(address.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return nil }
        let abstract = first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        var addr = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        // A path needs its terminating NUL inside sun_path; an abstract name does not.
        guard bytes.count + (abstract ? 0 : 1) <= capacity else { return nil }
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let length = abstract ? offset + bytes.count : MemoryLayout<sockaddr_un>.size
        return (addr, socklen_t(length))
    }

    /// A status text must be one line: newlines would start new assignments.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        return UInt64(seconds) &* 1_000_000 &+ UInt64(attoseconds / 1_000_000_000_000)
    }
}
