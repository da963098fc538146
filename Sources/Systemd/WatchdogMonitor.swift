// WATCHDOG=1 only while every part of the worker makes progress. The engine's step loop and the
// connection's I/O loop each report beats; a timer calls `tick()` every `pingInterval` and the ping is
// sent only if no busy part has gone quiet for longer than `staleAfter`. So a stuck engine (busy, no
// step for a minute) stops the pings even though the I/O loop is fine, and systemd restarts the unit
// after WatchdogSec. An idle part (engine waiting for jobs) counts as healthy.
import Core
import Foundation

public final class WatchdogMonitor: Sendable {
    public let notifier: Notifier
    /// How long a busy part may go without a beat before the pings stop.
    public let staleAfter: Duration
    /// How often to call `tick()`: half of systemd's interval, or every 10 s when there is no watchdog.
    public let pingInterval: Duration

    private struct Part {
        var lastBeat: ContinuousClock.Instant
        var busy: Bool
    }

    private let parts: Locked<[String: Part]>

    /// - Parameters:
    ///   - parts: names of the parts that beat, e.g. ["engine", "io"]; each starts idle and fresh.
    ///   - staleAfter: default: systemd's watchdog interval (WATCHDOG_USEC), or 60 s without one.
    public init(notifier: Notifier, parts: [String], staleAfter: Duration? = nil,
                now: ContinuousClock.Instant = .now) {
        self.notifier = notifier
        let interval = notifier.watchdogInterval()
        self.staleAfter = staleAfter ?? interval ?? .seconds(60)
        self.pingInterval = interval.map { $0 / 2 } ?? .seconds(10)
        self.parts = Locked(Dictionary(uniqueKeysWithValues: parts.map { ($0, Part(lastBeat: now, busy: false)) }))
    }

    /// The part made progress (a denoising step, an I/O loop turn).
    public func beat(_ part: String, now: ContinuousClock.Instant = .now) {
        parts.withLock { $0[part, default: Part(lastBeat: now, busy: false)].lastBeat = now }
    }

    /// The part starts (true) or stops (false) work that must beat; an idle part never goes stale.
    public func setBusy(_ part: String, _ busy: Bool, now: ContinuousClock.Instant = .now) {
        parts.withLock { $0[part] = Part(lastBeat: now, busy: busy) }
    }

    /// Busy parts without a beat for longer than `staleAfter`, sorted.
    public func staleParts(now: ContinuousClock.Instant = .now) -> [String] {
        let staleAfter = self.staleAfter
        return parts.withLock { $0.filter { $0.value.busy && now - $0.value.lastBeat > staleAfter }.keys.sorted() }
    }

    /// Sends WATCHDOG=1 when no part is stale. Returns whether it was sent.
    @discardableResult
    public func tick(now: ContinuousClock.Instant = .now) -> Bool {
        guard staleParts(now: now).isEmpty else { return false }
        return notifier.watchdog()
    }
}
