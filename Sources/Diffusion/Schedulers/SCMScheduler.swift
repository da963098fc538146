// SCMScheduler, TrigFlow consistency sampling of Sana Sprint. Port of diffusers 0.42.1 schedulers/scheduling_scm.py:
// __init__ :66-88, set_timesteps :119-170, step :210-275. Timesteps are float32 angles in [0, π/2]; every step
// predicts x0 = cos(s)·x − sin(s)·F and re-noises to the next angle t: x' = cos(t)·x0 + sin(t)·σ_d·z, z ~ N(0, 1)
// drawn by the caller from the request's generator (diffusers draws `randn_tensor(shape, generator)` in every step,
// the last one included, where sin(0) = 0).
import Foundation

public struct SCMScheduler: Sendable {
    /// The resolved `__init__` kwargs.
    public struct Params: Codable, Sendable, Equatable, Hashable {
        public var numTrainTimesteps = 1000
        public var predictionType = "trigflow"
        public var sigmaData = 0.5
    }

    /// What one step gives: the next sample and the x0 prediction (`denoised`; the pipeline decodes the last one).
    public struct StepOutput: Sendable, Equatable {
        public var prevSample: [Float]
        public var denoised: [Float]
    }

    public let params: Params
    /// `scheduler.timesteps`: steps + 1 float32 angles, the last 0.
    public private(set) var timesteps: [Float] = []
    /// Steps taken so far (nil before the first).
    public private(set) var stepIndex: Int?

    /// Class defaults: num_train_timesteps 1000, prediction_type "trigflow", sigma_data 0.5.
    public init(config: SchedulerConfig) throws {
        var p = Params()
        p.numTrainTimesteps = try config.int("num_train_timesteps", 1000)
        p.predictionType = try config.string("prediction_type", "trigflow")
        p.sigmaData = try config.double("sigma_data", 0.5)
        guard p.predictionType == "trigflow" else {
            throw SchedulerError(.unsupportedOption, "prediction_type \(p.predictionType) is not supported (trigflow only)")
        }
        guard p.sigmaData > 0, p.numTrainTimesteps >= 1 else {
            throw SchedulerError(.badConfig, "sigma_data must be positive and num_train_timesteps at least 1")
        }
        params = p
    }

    /// `set_timesteps(steps, max_timesteps=…, intermediate_timesteps=…)` (:119-170): `[max, intermediate, 0]` for two
    /// steps with an intermediate angle, else `linspace(max, 0, steps + 1)` in float32. Sana Sprint's pipeline passes
    /// max 1.57080 and intermediate 1.3 (only valid with two steps).
    public mutating func setTimesteps(_ steps: Int, maxTimesteps: Double = 1.57080, intermediateTimesteps: Double? = 1.3) throws {
        guard steps >= 1, steps <= params.numTrainTimesteps else {
            throw SchedulerError(.badSteps, "steps must be between 1 and \(params.numTrainTimesteps), got \(steps)")
        }
        if let mid = intermediateTimesteps {
            guard steps == 2 else {
                throw SchedulerError(.badSteps, "an intermediate timestep is only used with 2 steps, got \(steps)")
            }
            timesteps = [Float(maxTimesteps), Float(mid), 0]
        } else {
            timesteps = TableMath.torchLinspace(maxTimesteps, 0, steps + 1)
        }
        stepIndex = nil
    }

    /// `step(model_output, timestep, sample, generator)` (:210-275) with the step's noise `z` given.
    public mutating func step(modelOutput f: [Float], timestep: Float, sample x: [Float], noise z: [Float]) throws -> StepOutput {
        try checkSameCount(f, x)
        try checkSameCount(z, x)
        guard !timesteps.isEmpty else { throw SchedulerError(.badInput, "set_timesteps was not called") }
        let i = try stepIndex ?? firstStepIndex(timesteps, timestep, fallback: nil)
        guard i + 1 < timesteps.count else { throw SchedulerError(.badInput, "all \(timesteps.count - 1) steps were already taken") }
        let s = timesteps[i], t = timesteps[i + 1]
        let cs = Foundation.cos(s), ss = Foundation.sin(s), ct = Foundation.cos(t), st = Foundation.sin(t)
        let sd = Float(params.sigmaData)
        var x0 = [Float](repeating: 0, count: x.count), prev = x0
        for j in 0..<x.count {
            x0[j] = cs * x[j] - ss * f[j]                 // pred_x0 = cos(s)·x − sin(s)·F
            prev[j] = ct * x0[j] + st * (z[j] * sd)       // cos(t)·x0 + sin(t)·(randn·σ_d)
        }
        stepIndex = i + 1
        return StepOutput(prevSample: prev, denoised: x0)
    }
}
