// Health: what GET /healthz and GET /readyz answer, in the same states systemd sees.
//   /healthz (liveness): the process answers and its loops make progress; 503 once the watchdog would
//   withhold WATCHDOG=1 (engine or I/O loop quiet while busy, a class left without a consumer).
//   /readyz (readiness): the model is loaded, the broker connected and every consumer up, the state dir takes
//   writes, and the worker is not draining; that is, between READY=1 and STOPPING=1, and while connected.
import Core
import Foundation

/// One probe's answer: ok, and a short reason a person can act on.
public struct Probe: Sendable, Equatable {
    public var ok: Bool
    public var reason: String

    public init(ok: Bool, reason: String) {
        self.ok = ok
        self.reason = reason
    }
}

/// What answers the probes once the worker runs (the Daemon).
public protocol HealthSource: AnyObject, Sendable {
    func readinessProbe() -> Probe
    func livenessProbe() -> Probe
}

/// The probes' answers over the whole process lifetime: "loading" before a source is attached (the
/// listener starts before the models load, so a probe never finds the port closed on a live process).
public final class HealthBoard: Sendable {
    private let source = Locked<(any HealthSource)?>(nil)

    public init() {}

    public func attach(_ s: any HealthSource) { source.withLock { $0 = s } }

    public func readinessProbe() -> Probe {
        source.value?.readinessProbe() ?? Probe(ok: false, reason: "loading models")
    }

    public func livenessProbe() -> Probe {
        source.value?.livenessProbe() ?? Probe(ok: true, reason: "loading models")
    }
}

extension Daemon: HealthSource {
    public func readinessProbe() -> Probe {
        let (isServing, isStopping, down, stateProblem) = cond.withLock { () -> (Bool, Bool, Set<String>, String?) in
            (serving, stopping, consumersDown, self.stateProblem)
        }
        if isStopping { return Probe(ok: false, reason: "draining") }
        if let stateProblem { return Probe(ok: false, reason: "state_dir not writable: \(stateProblem)") }
        if !isServing { return Probe(ok: false, reason: "starting: connecting to the broker and subscribing") }
        if !client.isConnected { return Probe(ok: false, reason: "broker not connected (reconnecting)") }
        if !down.isEmpty { return Probe(ok: false, reason: "no consumer on \(down.sorted().joined(separator: ", ")) (subscribing again)") }
        return Probe(ok: true, reason: "ready")
    }

    public func livenessProbe() -> Probe {
        let stale = liveness.staleParts()
        guard stale.isEmpty else {
            return Probe(ok: false, reason: "\(stale.joined(separator: " and ")) made no progress for \(liveness.staleAfter)")
        }
        return Probe(ok: true, reason: "alive")
    }
}
