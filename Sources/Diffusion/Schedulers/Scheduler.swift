// The scheduler abstraction shared by `ddim`, `dpmpp_2m`, `euler` and `flow_euler` (diffusers SchedulerMixin:
// set_timesteps / scale_model_input / step / init_noise_sigma). A scheduler value holds the tables for one
// step count plus the per-sample state (step index, multistep history): the sampler owns one per request.
import Foundation
import Tensor

/// The resolved settings of one scheduler (diffusers `__init__` kwargs after the class defaults), each case
/// owned by its scheduler. Codable so that tables can be cached on disk together with what produced them.
public enum SchedulerSettings: Codable, Sendable, Equatable, Hashable {
    case ddim(DDIMScheduler.Params)
    case dpmpp2m(DPMSolverMultistepScheduler.Params)
    case euler(EulerDiscreteScheduler.Params)
    case flowEuler(FlowMatchEulerDiscreteScheduler.Params)

    public var sampler: SamplerName {
        switch self {
        case .ddim: return .ddim
        case .dpmpp2m: return .dpmpp2m
        case .euler: return .euler
        case .flowEuler: return .flowEuler
        }
    }

    /// Canonical text of these settings (sorted keys), e.g. for a cache key.
    public var canonicalJSON: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        guard let data = try? enc.encode(self), let s = String(data: data, encoding: .utf8) else { return "\(self)" }
        return s
    }
}

/// Precomputed noise schedule for one (scheduler config, step count): everything `step` needs.
public struct SchedulerTables: Codable, Sendable, Equatable {
    public var settings: SchedulerSettings
    public var steps: Int
    /// The timestep of each step as passed to the model (integers for ddim / dpmpp_2m).
    public var timesteps: [Float]
    /// steps + 1 sigmas (dpmpp_2m, euler, flow_euler); empty for ddim.
    public var sigmas: [Float]
    /// ddim: the full alphas_cumprod table (num_train_timesteps entries); empty otherwise.
    public var alphasCumprod: [Float]
    /// ddim: alpha used after the last step (1 if set_alpha_to_one, else alphas_cumprod[0]).
    public var finalAlphaCumprod: Float
    public var initNoiseSigma: Float

    public init(settings: SchedulerSettings, steps: Int, timesteps: [Float], sigmas: [Float] = [],
                alphasCumprod: [Float] = [], finalAlphaCumprod: Float = 1, initNoiseSigma: Float = 1) {
        self.settings = settings
        self.steps = steps
        self.timesteps = timesteps
        self.sigmas = sigmas
        self.alphasCumprod = alphasCumprod
        self.finalAlphaCumprod = finalAlphaCumprod
        self.initNoiseSigma = initNoiseSigma
    }

    public var sampler: SamplerName { settings.sampler }

    /// A stable key for caching these tables on disk.
    public static func cacheKey(settings: SchedulerSettings, steps: Int) -> String {
        "\(settings.sampler.rawValue)|\(steps)|\(settings.canonicalJSON)"
    }
    public var cacheKey: String { Self.cacheKey(settings: settings, steps: steps) }
}

/// A diffusers-compatible noise scheduler. All arithmetic is float32 like diffusers on CPU.
public protocol Scheduler: Sendable {
    /// The scheduler's own resolved settings.
    associatedtype Params: Codable, Sendable, Hashable
    var sampler: SamplerName { get }
    var params: Params { get }
    /// Tables of the current step count (after `setTimesteps`).
    var tables: SchedulerTables { get }
    /// `scheduler.timesteps`.
    var timesteps: [Float] { get }
    /// `scheduler.init_noise_sigma`.
    var initNoiseSigma: Float { get }
    /// Steps taken so far (diffusers `step_index`, nil before the first call).
    var stepIndex: Int? { get }

    /// The class defaults applied to the keys of `config` (diffusers `from_config`), validated.
    static func params(_ config: SchedulerConfig) throws -> Params
    /// Builds the scheduler from a config with diffusers' from_config semantics.
    init(config: SchedulerConfig) throws
    /// Rebuilds a scheduler from cached tables (no table computation).
    init(tables: SchedulerTables) throws

    /// Tables for `steps` inference steps (pure; does not change this scheduler).
    func tables(steps: Int) throws -> SchedulerTables
    /// `set_timesteps(steps)`: installs the tables and resets the per-sample state.
    mutating func setTimesteps(_ steps: Int) throws
    /// `scale_model_input(sample, t)`.
    mutating func scaleModelInput(_ sample: [Float], timestep: Float) throws -> [Float]
    /// `step(model_output, t, sample).prev_sample`.
    mutating func step(modelOutput: [Float], timestep: Float, sample: [Float]) throws -> [Float]
}

extension Scheduler {
    public var timesteps: [Float] { tables.timesteps }
    public var initNoiseSigma: Float { tables.initNoiseSigma }

    public mutating func setTimesteps(_ steps: Int) throws {
        self = try Self(tables: tables(steps: steps))
    }

    /// Tensor convenience for `step`.
    public mutating func step(modelOutput: Tensor, timestep: Float, sample: Tensor) throws -> Tensor {
        guard modelOutput.shape == sample.shape else {
            throw SchedulerError(.badInput, "model output \(modelOutput.shape) and sample \(sample.shape) differ in shape")
        }
        return Tensor(shape: sample.shape, data: try step(modelOutput: modelOutput.data, timestep: timestep, sample: sample.data))
    }

    /// Tensor convenience for `scaleModelInput`.
    public mutating func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor {
        Tensor(shape: sample.shape, data: try scaleModelInput(sample.data, timestep: timestep))
    }
}

/// Construction by sampler name.
public enum Schedulers {
    /// A scheduler of kind `name` from a pipeline's scheduler config (from_config carry-over), with no steps set.
    public static func make(_ name: SamplerName, config: SchedulerConfig) throws -> any Scheduler {
        switch name {
        case .ddim: return try DDIMScheduler(config: config)
        case .dpmpp2m: return try DPMSolverMultistepScheduler(config: config)
        case .euler: return try EulerDiscreteScheduler(config: config)
        case .flowEuler: return try FlowMatchEulerDiscreteScheduler(config: config)
        }
    }

    /// A scheduler ready to sample from cached tables.
    public static func make(tables: SchedulerTables) throws -> any Scheduler {
        switch tables.settings {
        case .ddim: return try DDIMScheduler(tables: tables)
        case .dpmpp2m: return try DPMSolverMultistepScheduler(tables: tables)
        case .euler: return try EulerDiscreteScheduler(tables: tables)
        case .flowEuler: return try FlowMatchEulerDiscreteScheduler(tables: tables)
        }
    }

    /// The resolved settings (class defaults applied) a scheduler of kind `name` would use for `config`.
    public static func settings(_ name: SamplerName, config: SchedulerConfig) throws -> SchedulerSettings {
        switch name {
        case .ddim: return .ddim(try DDIMScheduler.params(config))
        case .dpmpp2m: return .dpmpp2m(try DPMSolverMultistepScheduler.params(config))
        case .euler: return .euler(try EulerDiscreteScheduler.params(config))
        case .flowEuler: return .flowEuler(try FlowMatchEulerDiscreteScheduler.params(config))
        }
    }

    /// Cache key of the tables for (name, config, steps), without computing them.
    public static func cacheKey(_ name: SamplerName, config: SchedulerConfig, steps: Int) throws -> String {
        SchedulerTables.cacheKey(settings: try settings(name, config: config), steps: steps)
    }

    /// Tables for (name, config, steps).
    public static func tables(_ name: SamplerName, config: SchedulerConfig, steps: Int) throws -> SchedulerTables {
        try make(name, config: config).tables(steps: steps)
    }
}

// MARK: shared helpers

/// The beta schedule and prediction keys shared by the DDPM-family schedulers (ddim, dpmpp_2m, euler), with
/// diffusers' defaults.
public struct BetaSchedule: Codable, Sendable, Equatable, Hashable {
    public var numTrainTimesteps = 1000
    public var betaStart = 0.0001
    public var betaEnd = 0.02
    public var betaSchedule = "linear"
    public var trainedBetas: [Double]? = nil
    public var predictionType = "epsilon"
    public var stepsOffset = 0

    public init() {}

    /// Reads the shared keys of a config.
    public init(_ c: SchedulerConfig) throws {
        numTrainTimesteps = try c.int("num_train_timesteps", 1000)
        betaStart = try c.double("beta_start", 0.0001)
        betaEnd = try c.double("beta_end", 0.02)
        betaSchedule = try c.string("beta_schedule", "linear")
        trainedBetas = try c.doubles("trained_betas")
        predictionType = try c.string("prediction_type", "epsilon")
        stepsOffset = try c.int("steps_offset", 0)
        guard numTrainTimesteps >= 2 else {
            throw SchedulerError(.badConfig, "num_train_timesteps must be at least 2")
        }
        try c.requireOff(["rescale_betas_zero_snr", "thresholding"])
    }

    /// betas → alphas_cumprod, bit-exact as torch (docs/engine.md §4.0).
    public func alphasCumprod() throws -> [Float] {
        let betas: [Float]
        if let tb = trainedBetas {
            guard tb.count == numTrainTimesteps else {
                throw SchedulerError(.badConfig, "trained_betas has \(tb.count) values, expected \(numTrainTimesteps)")
            }
            betas = tb.map { Float($0) }
        } else {
            switch betaSchedule {
            case "linear":
                betas = TableMath.torchLinspace(betaStart, betaEnd, numTrainTimesteps)
            case "scaled_linear":
                betas = TableMath.torchLinspace(betaStart.squareRoot(), betaEnd.squareRoot(), numTrainTimesteps).map { $0 * $0 }
            case "squaredcos_cap_v2":
                betas = TableMath.betasForAlphaBar(numTrainTimesteps)
            default:
                throw SchedulerError(.unsupportedOption, "beta_schedule \(betaSchedule) is not supported")
            }
        }
        return TableMath.cumprodF32(betas.map { 1 - $0 })
    }

    func checkSteps(_ steps: Int) throws {
        guard steps >= 1, steps <= numTrainTimesteps else {
            throw SchedulerError(.badSteps, "steps must be between 1 and \(numTrainTimesteps), got \(steps)")
        }
    }
}

/// diffusers `index_for_timestep` for the first step: the 2nd match if the timestep occurs twice,
/// `fallback` (or an error) if absent.
func firstStepIndex(_ timesteps: [Float], _ t: Float, fallback: Int?) throws -> Int {
    let matches = timesteps.indices.filter { timesteps[$0] == t }
    if matches.count > 1 { return matches[1] }
    if let m = matches.first { return m }
    if let f = fallback { return f }
    throw SchedulerError(.badInput, "timestep \(t) is not in the schedule")
}

func checkSameCount(_ a: [Float], _ b: [Float]) throws {
    guard a.count == b.count else {
        throw SchedulerError(.badInput, "model output has \(a.count) values, sample has \(b.count)")
    }
}
