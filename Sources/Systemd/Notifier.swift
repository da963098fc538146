// sd_notify(3) for Type=notify services: READY=1, STATUS=, WATCHDOG=1, STOPPING=1, RELOADING=1,
// EXTEND_TIMEOUT_USEC=. Every call returns at once, sending nothing, when there is no notify socket
// (not started by systemd), so the worker can call it unconditionally.
import CSystemd
import Glibc

/// Sends service state notifications to systemd (or to any NOTIFY_SOCKET listener) through libsystemd's
/// `sd_notify`, which reads `NOTIFY_SOCKET` at every call (a path, or "@name" for the abstract namespace).
public struct Notifier: Sendable {
    /// false: every call is a no-op whatever the environment says (a worker embedded in another process,
    /// such as a test runner, must not speak for it).
    public let followsEnvironment: Bool

    public init() { followsEnvironment = true }

    /// A notifier that never sends.
    public static let silent = Notifier(followsEnvironment: false)

    private init(followsEnvironment: Bool) { self.followsEnvironment = followsEnvironment }

    /// Whether a notification would go anywhere at all (`NOTIFY_SOCKET` is set and not empty).
    public var isEnabled: Bool {
        guard followsEnvironment, let value = getenv("NOTIFY_SOCKET") else { return false }
        return value.pointee != 0
    }

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

    /// Sends raw `KEY=value` assignments as one message. Returns whether it was delivered; `false`
    /// also when notifications are disabled.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    /// The watchdog interval systemd expects (`WatchdogSec=`), or nil when the watchdog is off for this
    /// process (`WATCHDOG_USEC` unset, or `WATCHDOG_PID` naming another process).
    public func watchdogInterval() -> Duration? {
        guard followsEnvironment else { return nil }
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// How often to send `WATCHDOG=1`: half the interval, as sd_watchdog_enabled(3) recommends.
    public func watchdogPingInterval() -> Duration? {
        watchdogInterval().map { $0 / 2 }
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
