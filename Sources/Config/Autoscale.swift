// Autoscale: the `[autoscale]` policy `darkroom autoscale` (ops/autoscale, darkroom-autoscale.timer)
// scales each class's local workers with. `[autoscale]` holds the defaults, `[autoscale.classes.<name>]`
// a class's own policy, whose unset keys take the defaults. The worker itself ignores this section.

extension DarkroomConfig {
    public struct Autoscale: Sendable, Equatable {
        /// How one class scales (the same fields in `[autoscale]` and `[autoscale.classes.<name>]`).
        public struct Policy: Sendable, Equatable {
            /// Local workers never fewer than this (0 lets an idle class stop entirely).
            public var minWorkers: Int
            /// Local workers never more than this.
            public var maxWorkers: Int
            /// Waiting jobs one worker is expected to absorb: capacity = workers x this.
            public var targetDepthPerWorker: Int
            /// Width of the dead band around capacity, as a fraction (0.25: up above 125 %, down below 75 %).
            public var hysteresis: Double
            /// Seconds after a change of a class during which further changes wait.
            public var cooldown: Double

            public init(minWorkers: Int = 1, maxWorkers: Int = 4, targetDepthPerWorker: Int = 4,
                        hysteresis: Double = 0.25, cooldown: Double = 300) {
                self.minWorkers = minWorkers
                self.maxWorkers = maxWorkers
                self.targetDepthPerWorker = targetDepthPerWorker
                self.hysteresis = hysteresis
                self.cooldown = cooldown
            }
        }

        /// `[autoscale]`: the policy of every class without its own table.
        public var defaults: Policy
        /// `[autoscale.classes.<name>]`, fully resolved (unset keys filled from `defaults`).
        public var classes: [String: Policy]

        public init(defaults: Policy = Policy(), classes: [String: Policy] = [:]) {
            self.defaults = defaults
            self.classes = classes
        }

        /// The policy that applies to a class.
        public func policy(for className: String) -> Policy {
            classes[className] ?? defaults
        }
    }
}

// MARK: - The one validation of a policy

extension DarkroomConfig.Autoscale.Policy {
    /// The allowed values of each field, stated once: the config reader refuses values outside them and
    /// the planner holds a class whose policy has any problem.
    public static let minWorkersRange = 0...999
    public static let maxWorkersRange = 0...999
    public static let targetDepthPerWorkerRange = 1...1_000_000
    public static let hysteresisRange = 0.0...0.95
    public static let cooldownRange = 0.0...86_400.0

    /// Problems a person must fix in the configuration, each starting with the field's name; empty when
    /// the policy is usable.
    public func problems() -> [String] {
        func range<T: Comparable>(_ r: ClosedRange<T>) -> String { "between \(r.lowerBound) and \(r.upperBound)" }
        var out: [String] = []
        let P = Self.self
        if !P.minWorkersRange.contains(minWorkers) {
            out.append("min_workers must be \(range(P.minWorkersRange)) (is \(minWorkers))")
        }
        if !P.maxWorkersRange.contains(maxWorkers) {
            out.append("max_workers must be \(range(P.maxWorkersRange)) (is \(maxWorkers))")
        } else if maxWorkers < minWorkers {
            out.append("max_workers (\(maxWorkers)) must be at least min_workers (\(minWorkers))")
        }
        if !P.targetDepthPerWorkerRange.contains(targetDepthPerWorker) {
            out.append("target_depth_per_worker must be \(range(P.targetDepthPerWorkerRange)) (is \(targetDepthPerWorker))")
        }
        if !P.hysteresisRange.contains(hysteresis) {
            out.append("hysteresis must be \(range(P.hysteresisRange)) (is \(hysteresis))")
        }
        if !P.cooldownRange.contains(cooldown) {
            out.append("cooldown must be \(range(P.cooldownRange)) seconds (is \(cooldown))")
        }
        return out
    }
}

// MARK: - Keys and reading

extension DarkroomConfig {
    /// Fields of `[autoscale]` and of each `[autoscale.classes.<name>]`.
    static let autoscaleFields = ["min_workers", "max_workers", "target_depth_per_worker", "hysteresis", "cooldown"]

    /// The per-class autoscale keys these classes allow (for unknown-key suggestions; the `[autoscale]`
    /// keys themselves are in `scalarKeys`).
    static func autoscaleKnownKeys(classes: [SizeClass]) -> [String] {
        classes.flatMap { c in autoscaleFields.map { "autoscale.classes.\(c.name).\($0)" } }
    }

    /// Reads `[autoscale]` and `[autoscale.classes.*]`; classes must be defined ones.
    static func buildAutoscale(_ r: Reader, classes: [SizeClass]) throws -> Autoscale {
        let defaults = try readPolicy(r, prefix: "autoscale.", base: Policy())
        var names: [String] = []
        for key in r.entries.keys.sorted() where key.hasPrefix("autoscale.classes.") {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { continue }
            let name = String(parts[2])
            if !names.contains(name) { names.append(name) }
        }
        var perClass: [String: Autoscale.Policy] = [:]
        for name in names {
            let prefix = "autoscale.classes.\(name)."
            guard classes.contains(where: { $0.name == name }) else {
                let key = autoscaleFields.map { prefix + $0 }.first(where: r.has)
                    ?? r.entries.keys.sorted().first { $0.hasPrefix(prefix) } ?? prefix + "min_workers"
                throw r.fail(.invalid, key, "class \"\(name)\" is not defined; defined: "
                             + classes.map(\.name).joined(separator: ", "))
            }
            perClass[name] = try readPolicy(r, prefix: prefix, base: defaults)
        }
        return Autoscale(defaults: defaults, classes: perClass)
    }

    typealias Policy = Autoscale.Policy

    /// One policy table; unset keys keep `base`'s values.
    static func readPolicy(_ r: Reader, prefix: String, base: Policy) throws -> Policy {
        var p = base
        p.minWorkers = try r.int(prefix + "min_workers", Policy.minWorkersRange) ?? p.minWorkers
        p.maxWorkers = try r.int(prefix + "max_workers", Policy.maxWorkersRange) ?? p.maxWorkers
        p.targetDepthPerWorker = try r.int(prefix + "target_depth_per_worker", Policy.targetDepthPerWorkerRange)
            ?? p.targetDepthPerWorker
        p.hysteresis = try r.double(prefix + "hysteresis", Policy.hysteresisRange) ?? p.hysteresis
        p.cooldown = try r.double(prefix + "cooldown", Policy.cooldownRange) ?? p.cooldown
        // Each value is in its range now; what problems() still finds is min against max.
        if let problem = p.problems().first {
            let key = r.has(prefix + "max_workers") ? prefix + "max_workers" : prefix + "min_workers"
            throw r.fail(.invalid, key, problem)
        }
        return p
    }
}
