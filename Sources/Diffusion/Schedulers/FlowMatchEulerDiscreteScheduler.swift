// FlowMatchEulerDiscreteScheduler (static shift, deterministic), the `flow_euler` sampler.
// Port of diffusers 0.42.1 schedulers/scheduling_flow_match_euler_discrete.py: __init__ :92-144,
// stretch_shift_to_terminal :262-281, set_timesteps :283-382, index_for_timestep :384-413, step :423-523;
// docs/engine.md §4.5. The class has no scale_model_input: pipelines treat it as identity.
import Foundation

public struct FlowMatchEulerDiscreteScheduler: Scheduler {
    /// FlowMatch's resolved `__init__` kwargs (static shift only).
    public struct Params: Codable, Sendable, Equatable, Hashable {
        public var numTrainTimesteps = 1000
        public var shift = 1.0
        /// nil when absent or 0 (`if self.config.shift_terminal:`).
        public var shiftTerminal: Double? = nil
        public var invertSigmas = false
    }

    public let sampler = SamplerName.flowEuler
    public let params: Params
    public private(set) var tables: SchedulerTables
    public private(set) var stepIndex: Int?

    /// Class defaults: shift 1.0, no dynamic shifting, no terminal stretch.
    public static func params(_ c: SchedulerConfig) throws -> Params {
        var p = Params()
        p.numTrainTimesteps = try c.int("num_train_timesteps", 1000)
        p.shift = try c.double("shift", 1.0)
        p.shiftTerminal = try c.optionalDouble("shift_terminal")
        p.invertSigmas = try c.bool("invert_sigmas", false)
        try c.requireOff(["use_dynamic_shifting", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                          "stochastic_sampling"])
        guard p.numTrainTimesteps >= 1 else { throw SchedulerError(.badConfig, "num_train_timesteps must be positive") }
        guard p.shift > 0, p.shift.isFinite else { throw SchedulerError(.badConfig, "shift must be positive") }
        if let st = p.shiftTerminal, st == 0 { p.shiftTerminal = nil }  // `if self.config.shift_terminal:`
        return p
    }

    public init(config: SchedulerConfig) throws {
        let p = try Self.params(config)
        params = p
        tables = SchedulerTables(settings: .flowEuler(p), steps: 0, timesteps: [])
    }

    public init(tables: SchedulerTables) throws {
        guard case .flowEuler(let p) = tables.settings, tables.timesteps.count == tables.steps,
              tables.sigmas.count == tables.steps + 1
        else { throw SchedulerError(.badTables, "tables are not FlowMatch tables of the stated size") }
        params = p
        self.tables = tables
    }

    /// sigma_max / sigma_min of __init__: float32 (t/T) shifted in float32, read back as doubles.
    func sigmaRange() -> (Double, Double) {
        let T = params.numTrainTimesteps
        let sh = Float(params.shift), shm1 = Float(params.shift - 1)
        func shifted(_ t: Float) -> Float {
            let s = t / Float(T)
            return sh * s / (1 + shm1 * s)
        }
        let ts = TableMath.npLinspace(1, Double(T), T).map { Float($0) }   // ascending; [::-1] reverses
        return (Double(shifted(ts[T - 1])), Double(shifted(ts[0])))
    }

    public func tables(steps n: Int) throws -> SchedulerTables {
        guard n >= 1 else { throw SchedulerError(.badSteps, "steps must be at least 1, got \(n)") }
        let T = Double(params.numTrainTimesteps)
        let (sMax, sMin) = sigmaRange()
        let tsD = TableMath.npLinspace(sMax * T, sMin * T, n)
        var s = tsD.map { $0 / T }
        let shift = params.shift
        s = s.map { shift * $0 / (1 + (shift - 1) * $0) }
        if let terminal = params.shiftTerminal {
            let oneMinus = s.map { 1 - $0 }
            let scale = oneMinus[n - 1] / (1 - terminal)
            s = oneMinus.map { 1 - ($0 / scale) }
        }
        var sigmas = s.map { Float($0) }
        var ts = sigmas.map { $0 * Float(params.numTrainTimesteps) }
        if params.invertSigmas {
            sigmas = sigmas.map { 1 - $0 }
            ts = sigmas.map { $0 * Float(params.numTrainTimesteps) }
            sigmas.append(1)
        } else {
            sigmas.append(0)
        }
        return SchedulerTables(settings: .flowEuler(params), steps: n, timesteps: ts, sigmas: sigmas)
    }

    public mutating func scaleModelInput(_ sample: [Float], timestep: Float) throws -> [Float] { sample }

    public mutating func step(modelOutput v: [Float], timestep: Float, sample x: [Float]) throws -> [Float] {
        try checkSameCount(v, x)
        guard tables.steps > 0 else { throw SchedulerError(.badInput, "set_timesteps was not called") }
        let i = try stepIndex ?? firstStepIndex(tables.timesteps, timestep, fallback: nil)
        guard i < tables.steps else { throw SchedulerError(.badInput, "all steps were already taken") }
        let dt = tables.sigmas[i + 1] - tables.sigmas[i]
        var out = [Float](repeating: 0, count: x.count)
        for j in 0..<x.count { out[j] = x[j] + dt * v[j] }
        stepIndex = i + 1
        return out
    }
}
