// DPMSolverMultistepScheduler, algorithm dpmsolver++ (orders 1–3, midpoint/heun), the `dpmpp_2m` sampler.
// Port of diffusers 0.42.1 schedulers/scheduling_dpmsolver_multistep.py: __init__ :215-340,
// set_timesteps :367-497, _sigma_to_alpha_sigma_t :580-599, convert_model_output :749-846 (dpmsolver++ branch),
// first/second/third order updates :847-1143, index_for_timestep :1144-1179, step :1196-1286;
// docs/engine.md §4.3. Per-σ scalars are float32 0-dim tensor arithmetic in diffusers; reproduced in Float.
import Foundation

public struct DPMSolverMultistepScheduler: Scheduler {
    /// DPM-Solver's resolved `__init__` kwargs.
    public struct Params: Codable, Sendable, Equatable, Hashable {
        public var beta = BetaSchedule()
        public var solverOrder = 2
        public var algorithmType = "dpmsolver++"
        public var solverType = "midpoint"
        public var lowerOrderFinal = true
        public var eulerAtFinal = false
        public var finalSigmasType = "zero"
        /// nil = -inf (the default; JSON cannot hold infinities).
        public var lambdaMinClipped: Double? = nil
        public var varianceType: String? = nil
        public var timestepSpacing = "linspace"
        /// Flow-matching sigmas (Sana): σ_i = shift·s/(1 + (shift − 1)·s) on s = 1 − linspace(1, 1/T, n + 1),
        /// alpha_t = 1 − σ, sigma_t = σ.
        public var useFlowSigmas = false
        public var flowShift = 1.0
        public var predictionType: String { beta.predictionType }
    }

    public let sampler = SamplerName.dpmpp2m
    public let params: Params
    public private(set) var tables: SchedulerTables
    public private(set) var stepIndex: Int?
    /// model_outputs (x0 predictions), newest last; nil = not yet filled.
    private var history: [[Float]?]
    private var lowerOrderNums = 0
    private let alphasCumprod: [Float]

    /// Class defaults: solver_order 2, dpmsolver++, midpoint, lower_order_final, timestep_spacing "linspace".
    public static func params(_ c: SchedulerConfig) throws -> Params {
        var p = Params()
        p.beta = try BetaSchedule(c)
        p.solverOrder = try c.int("solver_order", 2)
        p.algorithmType = try c.string("algorithm_type", "dpmsolver++")
        p.solverType = try c.string("solver_type", "midpoint")
        p.lowerOrderFinal = try c.bool("lower_order_final", true)
        p.eulerAtFinal = try c.bool("euler_at_final", false)
        p.finalSigmasType = try c.string("final_sigmas_type", "zero")
        p.lambdaMinClipped = try c.optionalDouble("lambda_min_clipped").flatMap { $0.isFinite ? $0 : nil }
        p.varianceType = c.values["variance_type"]?.stringValue
        p.timestepSpacing = try c.string("timestep_spacing", "linspace")
        p.useFlowSigmas = try c.bool("use_flow_sigmas", false)
        p.flowShift = try c.double("flow_shift", 1.0)
        try c.requireOff(["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas",
                          "use_dynamic_shifting"])
        guard p.flowShift > 0 else { throw SchedulerError(.badConfig, "flow_shift must be positive, got \(p.flowShift)") }
        if p.algorithmType == "deis" { p.algorithmType = "dpmsolver++" }
        if ["logrho", "bh1", "bh2"].contains(p.solverType) { p.solverType = "midpoint" }
        guard p.algorithmType == "dpmsolver++" else {
            throw SchedulerError(.unsupportedOption, "algorithm_type \(p.algorithmType) is not supported (dpmsolver++ only)")
        }
        try requireSupported(p.solverType, ["midpoint", "heun"], key: "solver_type")
        guard (1...3).contains(p.solverOrder) else {
            throw SchedulerError(.unsupportedOption, "solver_order \(p.solverOrder) is not supported")
        }
        try requireSupported(p.predictionType, ["epsilon", "sample", "v_prediction", "flow_prediction"], key: "prediction_type")
        try requireSupported(p.finalSigmasType, ["zero", "sigma_min"], key: "final_sigmas_type")
        try requireSupported(p.timestepSpacing, ["linspace", "leading", "trailing"], key: "timestep_spacing")
        return p
    }

    public init(config: SchedulerConfig) throws {
        let p = try Self.params(config)
        params = p
        alphasCumprod = try p.beta.alphasCumprod()
        tables = SchedulerTables(settings: .dpmpp2m(p), steps: 0, timesteps: [])
        history = Array(repeating: nil, count: p.solverOrder)
    }

    public init(tables: SchedulerTables) throws {
        guard case .dpmpp2m(let p) = tables.settings, tables.timesteps.count == tables.steps,
              tables.sigmas.count == tables.steps + 1, (1...3).contains(p.solverOrder)
        else { throw SchedulerError(.badTables, "tables are not DPM-Solver tables of the stated size") }
        params = p
        self.tables = tables
        alphasCumprod = []
        history = Array(repeating: nil, count: p.solverOrder)
    }

    public func tables(steps n: Int) throws -> SchedulerTables {
        try params.beta.checkSteps(n)
        let T = params.beta.numTrainTimesteps
        let ac = alphasCumprod.isEmpty ? try params.beta.alphasCumprod() : alphasCumprod
        // last_timestep = T - searchsorted(flip(lambda_t), lambda_min_clipped)
        var last = T
        if let clipped = params.lambdaMinClipped {
            let lambdas = ac.map { a -> Float in Foundation.log(a.squareRoot()) - Foundation.log((1 - a).squareRoot()) }
            let flipped = Array(lambdas.reversed())
            let idx = flipped.firstIndex(where: { Double($0) >= clipped }) ?? flipped.count
            last = T - idx
        }
        var ts: [Int]
        switch params.timestepSpacing {
        case "linspace":
            ts = TableMath.npLinspace(0, Double(last - 1), n + 1).map { Int(TableMath.npRound($0)) }.reversed()
            ts.removeLast()
        case "leading":
            let r = last / (n + 1)
            ts = (0...n).map { $0 * r }.reversed()
            ts.removeLast()
            ts = ts.map { $0 + params.beta.stepsOffset }
        default: // trailing
            ts = TableMath.npArange(Double(last), 0, -Double(T) / Double(n)).map { Int(TableMath.npRound($0)) - 1 }
        }
        guard !ts.isEmpty, ts.allSatisfy({ $0 >= 0 && $0 < T }) else {
            throw SchedulerError(.badSteps, "timesteps fall outside 0..<\(T)")
        }
        var sigmas: [Float]
        if params.useFlowSigmas {
            // set_timesteps :465-469: float64 sigmas, timesteps = σ·T truncated by .to(int64)
            let shift = params.flowShift
            let flow = TableMath.npLinspace(1, 1 / Double(T), n + 1).map { 1 - $0 }
                .map { shift * $0 / (1 + (shift - 1) * $0) }.reversed().dropLast()
            sigmas = flow.map { Float($0) }
            ts = flow.map { Int(($0 * Double(T)).rounded(.towardZero)) }
        } else {
            sigmas = TableMath.npInterpIndex(ts.map(Double.init), TableMath.sigmaTable(ac)).map { Float($0) }
        }
        sigmas.append(params.finalSigmasType == "sigma_min" ? ((1 - ac[0]) / ac[0]).squareRoot() : 0)
        return SchedulerTables(settings: .dpmpp2m(params), steps: ts.count, timesteps: ts.map { Float($0) },
                               sigmas: sigmas)
    }

    public mutating func scaleModelInput(_ sample: [Float], timestep: Float) throws -> [Float] { sample }

    /// (alpha_t, sigma_t) of a sigma (_sigma_to_alpha_sigma_t :580-599): alpha = 1 / sqrt(σ² + 1), sigma_t = σ·alpha;
    /// with flow sigmas alpha = 1 − σ, sigma_t = σ.
    @inline(__always)
    func alphaSigma(_ s: Float) -> (Float, Float) {
        if params.useFlowSigmas { return (1 - s, s) }
        let a = 1 / (s * s + 1).squareRoot()
        return (a, s * a)
    }

    @inline(__always)
    static func lambda(_ a: Float, _ s: Float) -> Float { Foundation.log(a) - Foundation.log(s) }

    public mutating func step(modelOutput: [Float], timestep: Float, sample x: [Float]) throws -> [Float] {
        try checkSameCount(modelOutput, x)
        let n = tables.steps
        guard n > 0 else { throw SchedulerError(.badInput, "set_timesteps was not called") }
        let i = try stepIndex ?? firstStepIndex(tables.timesteps, timestep, fallback: n - 1)
        guard i < n else { throw SchedulerError(.badInput, "all \(n) steps were already taken") }
        let lowerOrderFinal = i == n - 1
            && (params.eulerAtFinal || (params.lowerOrderFinal && n < 15) || params.finalSigmasType == "zero")
        let lowerOrderSecond = i == n - 2 && params.lowerOrderFinal && n < 15
        let sig = tables.sigmas

        // convert_model_output (dpmsolver++): the x0 prediction.
        let (a0, s0) = alphaSigma(sig[i])
        let m: [Float]
        switch params.predictionType {
        case "epsilon":
            m = (0..<x.count).map { (x[$0] - s0 * modelOutput[$0]) / a0 }
        case "sample":
            m = modelOutput
        case "v_prediction":
            m = (0..<x.count).map { a0 * x[$0] - s0 * modelOutput[$0] }
        default: // flow_prediction
            let sg = sig[i]
            m = (0..<x.count).map { x[$0] - sg * modelOutput[$0] }
        }
        for k in 0..<(params.solverOrder - 1) { history[k] = history[k + 1] }
        history[params.solverOrder - 1] = m

        let order: Int
        if params.solverOrder == 1 || lowerOrderNums < 1 || lowerOrderFinal {
            order = 1
        } else if params.solverOrder == 2 || lowerOrderNums < 2 || lowerOrderSecond {
            order = 2
        } else {
            order = 3
        }
        let (aT, sT) = alphaSigma(sig[i + 1])
        let (aS0, sS0) = alphaSigma(sig[i])
        let lT = Self.lambda(aT, sT), lS0 = Self.lambda(aS0, sS0)
        let h = lT - lS0
        let emh: Float = Foundation.exp(-h)
        let c0 = sT / sS0
        let cD0 = aT * (emh - 1.0)
        var out = [Float](repeating: 0, count: x.count)
        switch order {
        case 1:
            for j in 0..<x.count { out[j] = c0 * x[j] - cD0 * m[j] }
        case 2:
            let m1 = history[params.solverOrder - 2]!
            let (aS1, sS1) = alphaSigma(sig[i - 1])
            let h0 = lS0 - Self.lambda(aS1, sS1)
            let r0 = h0 / h
            let invR0: Float = 1.0 / r0
            if params.solverType == "midpoint" {
                let cD1: Float = 0.5 * (aT * (emh - 1.0))
                for j in 0..<x.count {
                    let d1 = invR0 * (m[j] - m1[j])
                    out[j] = c0 * x[j] - cD0 * m[j] - cD1 * d1
                }
            } else {
                let cD1: Float = aT * ((emh - 1.0) / h + 1.0)
                for j in 0..<x.count {
                    let d1 = invR0 * (m[j] - m1[j])
                    out[j] = c0 * x[j] - cD0 * m[j] + cD1 * d1
                }
            }
        default:
            let m1 = history[params.solverOrder - 2]!, m2 = history[params.solverOrder - 3]!
            let (aS1, sS1) = alphaSigma(sig[i - 1])
            let (aS2, sS2) = alphaSigma(sig[i - 2])
            let lS1 = Self.lambda(aS1, sS1), lS2 = Self.lambda(aS2, sS2)
            let h0 = lS0 - lS1, h1 = lS1 - lS2
            let r0 = h0 / h, r1 = h1 / h
            let invR0: Float = 1.0 / r0, invR1: Float = 1.0 / r1
            let k1 = r0 / (r0 + r1), k2: Float = 1.0 / (r0 + r1)
            let cD1: Float = aT * ((emh - 1.0) / h + 1.0)
            let cD2: Float = aT * ((emh - 1.0 + h) / (h * h) - 0.5)
            for j in 0..<x.count {
                let d10 = invR0 * (m[j] - m1[j]), d11 = invR1 * (m1[j] - m2[j])
                let d1 = d10 + k1 * (d10 - d11)
                let d2 = k2 * (d10 - d11)
                out[j] = c0 * x[j] - cD0 * m[j] + cD1 * d1 - cD2 * d2
            }
        }
        if lowerOrderNums < params.solverOrder { lowerOrderNums += 1 }
        stepIndex = i + 1
        return out
    }
}
