// EulerDiscreteScheduler (s_churn = 0, deterministic), the `euler` sampler.
// Port of diffusers 0.42.1 schedulers/scheduling_euler_discrete.py: __init__ :203-276, init_noise_sigma :278-291,
// scale_model_input :326-348, set_timesteps :350-481 (linear interpolation, no karras/exponential/beta sigmas),
// index_for_timestep :640-668, step :685-800; docs/engine.md §4.4.
import Foundation

public struct EulerDiscreteScheduler: Scheduler {
    /// Euler's resolved `__init__` kwargs.
    public struct Params: Codable, Sendable, Equatable, Hashable {
        public var beta = BetaSchedule()
        public var timestepSpacing = "linspace"
        public var interpolationType = "linear"
        public var timestepType = "discrete"
        public var finalSigmasType = "zero"
        public var predictionType: String { beta.predictionType }
    }

    public let sampler = SamplerName.euler
    public let params: Params
    public private(set) var tables: SchedulerTables
    public private(set) var stepIndex: Int?
    private let alphasCumprod: [Float]

    /// Class defaults: timestep_spacing "linspace", interpolation "linear", final_sigmas_type "zero".
    public static func params(_ c: SchedulerConfig) throws -> Params {
        var p = Params()
        p.beta = try BetaSchedule(c)
        p.timestepSpacing = try c.string("timestep_spacing", "linspace")
        p.interpolationType = try c.string("interpolation_type", "linear")
        p.timestepType = try c.string("timestep_type", "discrete")
        p.finalSigmasType = try c.string("final_sigmas_type", "zero")
        try c.requireOff(["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"])
        guard p.interpolationType == "linear" else {
            throw SchedulerError(.unsupportedOption, "interpolation_type \(p.interpolationType) is not supported")
        }
        try requireSupported(p.predictionType, ["epsilon", "v_prediction", "sample", "original_sample"], key: "prediction_type")
        guard !(p.timestepType == "continuous" && p.predictionType == "v_prediction") else {
            throw SchedulerError(.unsupportedOption, "continuous timesteps with v_prediction are not supported")
        }
        try requireSupported(p.finalSigmasType, ["zero", "sigma_min"], key: "final_sigmas_type")
        try requireSupported(p.timestepSpacing, ["linspace", "leading", "trailing"], key: "timestep_spacing")
        return p
    }

    public init(config: SchedulerConfig) throws {
        let p = try Self.params(config)
        params = p
        alphasCumprod = try p.beta.alphasCumprod()
        tables = SchedulerTables(settings: .euler(p), steps: 0, timesteps: [])
    }

    public init(tables: SchedulerTables) throws {
        guard case .euler(let p) = tables.settings, tables.timesteps.count == tables.steps,
              tables.sigmas.count == tables.steps + 1
        else { throw SchedulerError(.badTables, "tables are not Euler tables of the stated size") }
        params = p
        self.tables = tables
        alphasCumprod = []
    }

    public func tables(steps n: Int) throws -> SchedulerTables {
        try params.beta.checkSteps(n)
        let T = params.beta.numTrainTimesteps
        let ac = alphasCumprod.isEmpty ? try params.beta.alphasCumprod() : alphasCumprod
        var ts: [Float]
        switch params.timestepSpacing {
        case "linspace":
            ts = TableMath.npLinspace(0, Double(T - 1), n).map { Float($0) }.reversed()
        case "leading":
            let r = T / n
            ts = (0..<n).map { Float($0 * r) }.reversed()
            ts = ts.map { $0 + Float(params.beta.stepsOffset) }
        default: // trailing
            ts = TableMath.npArange(Double(T), 0, -Double(T) / Double(n)).map { Float(TableMath.npRound($0)) }
            ts = ts.map { $0 - 1 }
        }
        let table = TableMath.sigmaTable(ac)
        var sigmas = TableMath.npInterpIndex(ts.map(Double.init), table).map { Float($0) }
        sigmas.append(params.finalSigmasType == "sigma_min" ? ((1 - ac[0]) / ac[0]).squareRoot() : 0)
        let maxSigma = sigmas.max() ?? 0
        let initSigma = params.timestepSpacing == "leading" ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
        return SchedulerTables(settings: .euler(params), steps: n, timesteps: ts, sigmas: sigmas,
                               initNoiseSigma: initSigma)
    }

    private mutating func currentIndex(_ timestep: Float) throws -> Int {
        guard tables.steps > 0 else { throw SchedulerError(.badInput, "set_timesteps was not called") }
        if let i = stepIndex { return i }
        let i = try firstStepIndex(tables.timesteps, timestep, fallback: nil)
        stepIndex = i
        return i
    }

    public mutating func scaleModelInput(_ sample: [Float], timestep: Float) throws -> [Float] {
        let i = try currentIndex(timestep)
        guard i < tables.steps else { throw SchedulerError(.badInput, "all steps were already taken") }
        let s = tables.sigmas[i]
        let d = (s * s + 1).squareRoot()
        return sample.map { $0 / d }
    }

    public mutating func step(modelOutput e: [Float], timestep: Float, sample x: [Float]) throws -> [Float] {
        try checkSameCount(e, x)
        let i = try currentIndex(timestep)
        guard i < tables.steps else { throw SchedulerError(.badInput, "all steps were already taken") }
        let sigma = tables.sigmas[i]
        let sigmaHat = sigma                         // gamma = 0 (s_churn = 0)
        let dt = tables.sigmas[i + 1] - sigmaHat
        var out = [Float](repeating: 0, count: x.count)
        let vDen = (sigma * sigma + 1).squareRoot(), vC = -sigma / vDen, vS = sigma * sigma + 1
        for j in 0..<x.count {
            let x0: Float
            switch params.predictionType {
            case "epsilon": x0 = x[j] - sigmaHat * e[j]
            case "v_prediction": x0 = e[j] * vC + x[j] / vS
            default: x0 = e[j]
            }
            let d = (x[j] - x0) / sigmaHat
            out[j] = x[j] + d * dt
        }
        stepIndex = i + 1
        return out
    }
}
