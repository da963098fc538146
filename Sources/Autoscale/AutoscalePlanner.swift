// The autoscaler's decision, as a pure function of what it observed: per class, the queue depth
// (messages ready in darkroom.jobs.<class>), the queue's consumer count and the number of local
// darkroom@<class>-<n> instances running, against a min/max/target policy with a hysteresis band and
// a cool-down. `darkroom autoscale` gathers the inputs, calls `plan`, applies the actions through
// systemctl and records when each class last changed.
import Config
import Core
import Foundation

/// What the autoscaler saw for one class.
public struct ClassObservation: Sendable, Equatable {
    public var className: String
    /// Messages ready (not yet delivered) in the class's queue.
    public var depth: Int
    /// Consumers on the class's queue, on every host.
    public var consumers: Int

    public init(className: String, depth: Int, consumers: Int) {
        self.className = className
        self.depth = depth
        self.consumers = consumers
    }
}

/// How one class scales: `[autoscale]` / `[autoscale.classes.<name>]` of the config (Config's type, so the
/// policy is written once).
public typealias ScalingPolicy = DarkroomConfig.Autoscale.Policy

/// Policies per class, with a default for classes not named.
public typealias AutoscaleConfig = DarkroomConfig.Autoscale

/// A change to make: run `to` local instances of the class instead of `from`.
public struct ScaleAction: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, Equatable {
        /// Fewer instances than min_workers.
        case belowMinimum = "below_minimum"
        /// More instances than max_workers.
        case aboveMaximum = "above_maximum"
        /// Depth above the band: more workers.
        case backlog
        /// Depth below the band: fewer workers.
        case idle
    }

    public var className: String
    public var from: Int
    public var to: Int
    public var reason: Reason

    public init(className: String, from: Int, to: Int, reason: Reason) {
        self.className = className
        self.from = from
        self.to = to
        self.reason = reason
    }

    public var description: String { "\(className): \(from) -> \(to) (\(reason.rawValue))" }
}

/// The verdict for one class, including the classes left alone and why (for `--dry-run`).
public struct ScaleDecision: Sendable, Equatable, CustomStringConvertible {
    public enum Hold: String, Sendable, Equatable {
        /// Depth within the hysteresis band around capacity.
        case withinBand = "within_band"
        /// A change is due but the class changed less than cooldown ago.
        case coolingDown = "cooling_down"
        /// More workers are due but the class is at max_workers.
        case atMaximum = "at_maximum"
        /// Fewer workers are due but the class is at min_workers.
        case atMinimum = "at_minimum"
        /// The policy is unusable (see `ScalingPolicy.problems()`).
        case invalidPolicy = "invalid_policy"
    }

    public enum Verdict: Sendable, Equatable {
        case scale(ScaleAction)
        case hold(Hold)
    }

    public var observation: ClassObservation
    public var current: Int
    public var verdict: Verdict

    public var action: ScaleAction? {
        if case .scale(let action) = verdict { return action }
        return nil
    }

    public var description: String {
        let seen = "\(observation.className): depth=\(observation.depth) consumers=\(observation.consumers) workers=\(current)"
        switch verdict {
        case .scale(let action): return "\(seen) -> scale to \(action.to) (\(action.reason.rawValue))"
        case .hold(let hold): return "\(seen) -> hold (\(hold.rawValue))"
        }
    }
}

public enum AutoscalePlanner {
    /// The changes to make, one per class at most, in the order of `classes`.
    ///
    /// - Parameters:
    ///   - classes: what was observed per class.
    ///   - current: local instances running per class (missing: 0).
    ///   - config: the policies.
    ///   - lastChange: when each class was last scaled (missing: never).
    ///   - now: the current time.
    public static func plan(classes: [ClassObservation], current: [String: Int], config: AutoscaleConfig,
                            lastChange: [String: Date], now: Date) -> [ScaleAction] {
        decide(classes: classes, current: current, config: config, lastChange: lastChange, now: now)
            .compactMap(\.action)
    }

    /// Every class's verdict, holds included.
    public static func decide(classes: [ClassObservation], current: [String: Int], config: AutoscaleConfig,
                              lastChange: [String: Date], now: Date) -> [ScaleDecision] {
        classes.map { observation in
            let running = max(0, current[observation.className] ?? 0)
            let verdict = decide(observation, running: running, policy: config.policy(for: observation.className),
                                 lastChange: lastChange[observation.className], now: now)
            return ScaleDecision(observation: observation, current: running, verdict: verdict)
        }
    }

    /// The rule for one class:
    /// 1. outside [min, max]: clamp at once (no cool-down: these are corrections, not reactions);
    /// 2. workers = max(local instances, queue consumers) (other hosts' consumers count as capacity,
    ///    local instances still starting count too); capacity = workers x target;
    /// 3. depth above capacity x (1 + hysteresis): add the workers that the depth needs,
    ///    ceil(depth / target) - workers; depth below capacity x (1 - hysteresis): remove the surplus
    ///    the same way (zero depth falls to min); otherwise hold;
    /// 4. the local result is clamped to [min, max]; a change waits out the cool-down.
    static func decide(_ observation: ClassObservation, running: Int, policy: ScalingPolicy,
                       lastChange: Date?, now: Date) -> ScaleDecision.Verdict {
        guard policy.problems().isEmpty else { return .hold(.invalidPolicy) }
        let name = observation.className
        if running < policy.minWorkers {
            return .scale(ScaleAction(className: name, from: running, to: policy.minWorkers, reason: .belowMinimum))
        }
        if running > policy.maxWorkers {
            return .scale(ScaleAction(className: name, from: running, to: policy.maxWorkers, reason: .aboveMaximum))
        }

        let depth = max(0, observation.depth)
        let workers = max(running, max(0, observation.consumers))
        let target = policy.targetDepthPerWorker
        let capacity = Double(workers * target)
        let needed = (depth + target - 1) / target
        let clamp = { (n: Int) in min(policy.maxWorkers, max(policy.minWorkers, n)) }

        let wanted: Int
        let reason: ScaleAction.Reason
        if Double(depth) > capacity * (1 + policy.hysteresis) {
            wanted = clamp(running + (needed - workers))
            reason = .backlog
            if wanted <= running { return .hold(.atMaximum) }
        } else if Double(depth) < capacity * (1 - policy.hysteresis) {
            wanted = clamp(running + (needed - workers))
            reason = .idle
            if wanted >= running { return .hold(.atMinimum) }
        } else {
            return .hold(.withinBand)
        }

        if let lastChange, now.timeIntervalSince(lastChange) < policy.cooldown {
            return .hold(.coolingDown)
        }
        return .scale(ScaleAction(className: name, from: running, to: wanted, reason: reason))
    }
}

/// What the autoscaler remembers between runs: when each class last changed. Stored as JSON.
public struct AutoscaleState: Sendable, Equatable, Codable {
    public var lastChange: [String: Date]

    public init(lastChange: [String: Date] = [:]) {
        self.lastChange = lastChange
    }

    /// Reads the state file; a missing file is an empty state.
    public static func load(from path: String) throws -> AutoscaleState {
        guard FileManager.default.fileExists(atPath: path) else { return AutoscaleState() }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(AutoscaleState.self, from: data)
        } catch {
            throw AutoscaleStateError(code: .unreadable, path: path, detail: "\(error)")
        }
    }

    /// Writes the state file atomically (temporary file, then rename).
    public func save(to path: String) throws {
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw AutoscaleStateError(code: .unwritable, path: path, detail: "\(error)")
        }
    }

    /// Records the applied actions at `now`.
    public mutating func record(_ actions: [ScaleAction], at now: Date) {
        for action in actions { lastChange[action.className] = now }
    }
}

public struct AutoscaleStateError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case unreadable = "autoscale_state_unreadable"
        case unwritable = "autoscale_state_unwritable"
    }
    public let code: Code
    public let path: String
    public let detail: String

    public var message: String { "\(path): \(detail) (delete the file to start afresh)" }
}
