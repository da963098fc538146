// DDIMScheduler, eta = 0 (DiT's default scheduler).
// Port of diffusers 0.42.1 schedulers/scheduling_ddim.py: __init__ :194-243, set_timesteps :334-382,
// step :384-491; docs/engine.md §4.1.
import Foundation

public struct DDIMScheduler: Scheduler {
    /// DDIM's resolved `__init__` kwargs.
    public struct Params: Codable, Sendable, Equatable, Hashable {
        public var beta = BetaSchedule()
        public var clipSample = true
        public var clipSampleRange = 1.0
        public var setAlphaToOne = true
        public var timestepSpacing = "leading"
        public var predictionType: String { beta.predictionType }
    }

    public let sampler = SamplerName.ddim
    public let params: Params
    public private(set) var tables: SchedulerTables
    public private(set) var stepIndex: Int?

    /// Class defaults: clip_sample TRUE, set_alpha_to_one true, timestep_spacing "leading".
    public static func params(_ c: SchedulerConfig) throws -> Params {
        var p = Params()
        p.beta = try BetaSchedule(c)
        p.clipSample = try c.bool("clip_sample", true)
        p.clipSampleRange = try c.double("clip_sample_range", 1.0)
        p.setAlphaToOne = try c.bool("set_alpha_to_one", true)
        p.timestepSpacing = try c.string("timestep_spacing", "leading")
        guard ["epsilon", "sample", "v_prediction"].contains(p.predictionType) else {
            throw SchedulerError(.unsupportedOption, "prediction_type \(p.predictionType) is not supported by DDIM")
        }
        try requireSupported(p.timestepSpacing, ["leading", "linspace", "trailing"], key: "timestep_spacing")
        return p
    }

    public init(config: SchedulerConfig) throws {
        let p = try Self.params(config)
        params = p
        let ac = try p.beta.alphasCumprod()
        tables = SchedulerTables(settings: .ddim(p), steps: 0, timesteps: [], alphasCumprod: ac,
                                 finalAlphaCumprod: p.setAlphaToOne ? 1 : ac[0])
    }

    public init(tables: SchedulerTables) throws {
        guard case .ddim(let p) = tables.settings, tables.alphasCumprod.count == p.beta.numTrainTimesteps,
              tables.timesteps.count == tables.steps
        else { throw SchedulerError(.badTables, "tables are not DDIM tables of the stated size") }
        params = p
        self.tables = tables
        stepIndex = nil
    }

    public func tables(steps n: Int) throws -> SchedulerTables {
        try params.beta.checkSteps(n)
        let T = params.beta.numTrainTimesteps
        let ts: [Int]
        switch params.timestepSpacing {
        case "linspace":
            ts = TableMath.npLinspace(0, Double(T - 1), n).map { Int(TableMath.npRound($0)) }.reversed()
        case "leading":
            let r = T / n
            ts = (0..<n).map { $0 * r + params.beta.stepsOffset }.reversed()
        default: // trailing
            ts = TableMath.npArange(Double(T), 0, -Double(T) / Double(n)).map { Int(TableMath.npRound($0)) - 1 }
        }
        guard ts.allSatisfy({ $0 >= 0 && $0 < T }) else {
            throw SchedulerError(.badSteps, "timesteps fall outside 0..<\(T) (steps_offset \(params.beta.stepsOffset))")
        }
        var t = tables
        t.steps = n
        t.timesteps = ts.map { Float($0) }
        return t
    }

    public mutating func scaleModelInput(_ sample: [Float], timestep: Float) throws -> [Float] { sample }

    public mutating func step(modelOutput e: [Float], timestep: Float, sample x: [Float]) throws -> [Float] {
        try checkSameCount(e, x)
        guard tables.steps > 0 else { throw SchedulerError(.badInput, "set_timesteps was not called") }
        let T = params.beta.numTrainTimesteps
        let t = Int(timestep)
        guard Float(t) == timestep, t >= 0, t < T else { throw SchedulerError(.badInput, "timestep \(timestep) is not in 0..<\(T)") }
        let prev = t - T / tables.steps
        let ac = tables.alphasCumprod
        let aT = ac[t]
        let aP = prev >= 0 ? ac[prev] : tables.finalAlphaCumprod
        let bT: Float = 1 - aT
        let sa = aT.squareRoot(), sb = bT.squareRoot()
        let dirCoeff = (1 - aP - 0).squareRoot()        // (1 - a_prev - std_dev_t²) ** 0.5 with eta = 0
        let saP = aP.squareRoot()
        let clip = params.clipSample
        let hi = Float(params.clipSampleRange), lo = -Float(params.clipSampleRange)
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            var x0: Float
            let eps: Float
            switch params.predictionType {
            case "epsilon":
                x0 = (x[i] - sb * e[i]) / sa
                eps = e[i]
            case "sample":
                x0 = e[i]
                eps = (x[i] - sa * x0) / sb
            default: // v_prediction
                x0 = sa * x[i] - sb * e[i]
                eps = sa * e[i] + sb * x[i]
            }
            if clip { x0 = min(max(x0, lo), hi) }
            out[i] = saP * x0 + dirCoeff * eps
        }
        stepIndex = (stepIndex ?? -1) + 1
        return out
    }
}
