import Foundation
import Testing
@testable import Diffusion
import Weights

/// Whole trajectories against diffusers 0.42.1 / torch 2.13 CPU, produced by:
/// ```
/// def run(s, steps, n=6):
///     s.set_timesteps(steps); x = torch.tensor([0.5, -1.25, 2.0, 0.1, 3.0, -0.2])
///     for k, t in enumerate(s.timesteps):
///         xs = s.scale_model_input(x, t)
///         eps = torch.tensor([np.sin(k + i * 0.7) for i in range(n)], dtype=torch.float32)
///         x = s.step(eps, t, xs).prev_sample
///     return x      # printed as float32 bit patterns
/// ```
@Suite struct SchedulerTrajectoryTests {
    func run(_ name: SamplerName, _ values: [String: JSONValue], steps: Int) throws -> (result: [Float], tables: SchedulerTables) {
        var s = try Schedulers.make(name, config: SchedulerConfig(values: values))
        try s.setTimesteps(steps)
        var x: [Float] = [0.5, -1.25, 2.0, 0.1, 3.0, -0.2]
        for (k, t) in s.timesteps.enumerated() {
            let xs = try s.scaleModelInput(x, timestep: t)
            let eps = (0..<6).map { Float(sin(Double(k) + Double($0) * 0.7)) }
            x = try s.step(modelOutput: eps, timestep: t, sample: xs)
        }
        return (x, s.tables)
    }

    func close(_ a: [Float], _ bits: [UInt32], rel: Float = 2e-6) -> Bool {
        let b = bits.map(Float.init(bitPattern:))
        let scale = b.reduce(Float(1)) { max($0, abs($1)) }
        return zip(a, b).allSatisfy { abs($0 - $1) <= rel * scale }
    }

    /// The DDIM config of the latent-dit fixture (every key, timestep_spacing "leading").
    var latentDitDDIM: [String: JSONValue] {
        ["beta_end": .double(0.02), "beta_schedule": .string("linear"), "beta_start": .double(0.0001),
         "clip_sample": .bool(false), "num_train_timesteps": .int(1000), "prediction_type": .string("epsilon"),
         "set_alpha_to_one": .bool(true), "steps_offset": .int(0), "timestep_spacing": .string("leading")]
    }

    @Test func eulerDefaultLinspaceInterpolatesFractionalTimesteps() throws {
        // run(EulerDiscreteScheduler(), 7); timesteps 999, 832.5, …; init_noise_sigma 157.40727
        let (x, t) = try run(.euler, [:], steps: 7)
        #expect(t.timesteps == [999, 832.5, 666, 499.5, 333, 166.5, 0])
        #expect(abs(t.initNoiseSigma - 157.40727) < 1e-3)
        #expect(close(x, [0xbd46_ad0a, 0x3f59_80f1, 0x3fac_90ef, 0x3f9b_37ea, 0x3f01_bdd4, 0xbedf_f405]))
    }

    @Test func eulerFromLeadingDDIMConfig() throws {
        // run(EulerDiscreteScheduler.from_config(latent-dit DDIM config), 7); init_noise_sigma 39.761986
        let (x, t) = try run(.euler, latentDitDDIM, steps: 7)
        #expect(t.timesteps == [852, 710, 568, 426, 284, 142, 0])
        #expect(abs(t.initNoiseSigma - 39.761986) < 1e-3)
        #expect(close(x, [0xbd91_fb24, 0x3f08_59ae, 0x3f62_eb57, 0x3f52_aba0, 0x3ebe_e591, 0xbe81_89f5]))
    }

    @Test func dpmSolverThirdOrder() throws {
        // run(DPMSolverMultistepScheduler(solver_order=3), 8)
        let (x, t) = try run(.dpmpp2m, ["solver_order": .int(3)], steps: 8)
        #expect(t.timesteps == [999, 874, 749, 624, 500, 375, 250, 125])
        #expect(close(x, [0x421d_efa3, 0xc393_a1c0, 0x434b_5e05, 0xc260_fd36, 0x43ec_c863, 0x422a_3060]))
    }

    @Test func dpmSolverHeunTrailing() throws {
        // run(DPMSolverMultistepScheduler(solver_type="heun", timestep_spacing="trailing"), 20)
        let (x, t) = try run(.dpmpp2m, ["solver_type": .string("heun"), "timestep_spacing": .string("trailing")], steps: 20)
        #expect(Array(t.timesteps.prefix(4)) == [999, 949, 899, 849])
        #expect(close(x, [0x41d1_5b9f, 0xc382_037c, 0x4387_4a88, 0x4135_584b, 0x43fe_dd43, 0x41f2_4574]))
    }

    @Test func ddimVPredictionClippedTrailingScaledLinear() throws {
        // run(DDIMScheduler(prediction_type="v_prediction", clip_sample=True, timestep_spacing="trailing",
        //                   beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012), 9)
        let (x, t) = try run(.ddim, ["prediction_type": .string("v_prediction"), "clip_sample": .bool(true),
                                     "timestep_spacing": .string("trailing"), "beta_schedule": .string("scaled_linear"),
                                     "beta_start": .double(0.00085), "beta_end": .double(0.012)], steps: 9)
        #expect(t.timesteps == [999, 888, 777, 666, 555, 443, 332, 221, 110])
        #expect(close(x, [0x3dc2_3910, 0xbf80_0000, 0x3f80_0000, 0x3e04_b81c, 0x3f80_0000, 0x3e37_b9ec]))
    }

    @Test func ddimCosineLinspace() throws {
        // run(DDIMScheduler(beta_schedule="squaredcos_cap_v2", timestep_spacing="linspace"), 7)
        let (x, t) = try run(.ddim, ["beta_schedule": .string("squaredcos_cap_v2"), "timestep_spacing": .string("linspace")], steps: 7)
        #expect(t.timesteps == [999, 832, 666, 500, 333, 166, 0])
        #expect(close(x, [0x3ebb_ba1f, 0x3f4b_01ea, 0x3f0b_9ebe, 0x3e87_65c8, 0xbe8f_8a56, 0xbf54_f2d0]))
    }
}
