import Foundation
import Testing
@testable import Diffusion
import Weights

/// DPM-Solver with flow sigmas (Sana, PixArt-Σ's sibling config) and SCMScheduler (Sana Sprint) against diffusers
/// 0.42.1 / torch 2.13 CPU, with the trajectory of SchedulerTrajectoryTests (eps_k[i] = sin(k + 0.7·i), x0 =
/// [0.5, −1.25, 2, 0.1, 3, −0.2]); SCM steps take `randn_tensor([6], generator=gen(7))` each step, as the Sprint
/// pipeline's `scheduler.step(..., generator=generator)` does. Values printed as float32 bit patterns.
@Suite struct FlowSchedulerTests {
    /// Sana's scheduler_config.json (Sana_600M_512px), as diffusers writes it (`-Infinity` included).
    static let sanaConfig = #"""
    {"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.32.0.dev0", "algorithm_type": "dpmsolver++",
     "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001, "dynamic_thresholding_ratio": 0.995,
     "euler_at_final": false, "final_sigmas_type": "zero", "flow_shift": 3.0, "lambda_min_clipped": -Infinity,
     "lower_order_final": true, "num_train_timesteps": 1000, "prediction_type": "flow_prediction", "sample_max_value": 1.0,
     "solver_order": 2, "solver_type": "midpoint", "steps_offset": 0, "thresholding": false, "timestep_spacing": "linspace",
     "trained_betas": null, "use_beta_sigmas": false, "use_exponential_sigmas": false, "use_flow_sigmas": true,
     "use_karras_sigmas": false, "use_lu_lambdas": false, "variance_type": null}
    """#

    static func floats(_ bits: [UInt32]) -> [Float] { bits.map(Float.init(bitPattern:)) }

    static func close(_ a: [Float], _ b: [Float], rel: Float = 2e-6) -> Bool {
        let scale = b.reduce(Float(1)) { max($0, abs($1)) }
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= rel * scale }
    }

    func sanaScheduler() throws -> DPMSolverMultistepScheduler {
        let json = try JSONValue.parse(Data(Self.sanaConfig.utf8))
        return try DPMSolverMultistepScheduler(config: SchedulerConfig(json: json.objectValue!))
    }

    @Test func sanaConfigWithMinusInfinityGivesFlowTables() throws {
        let s = try sanaScheduler()
        #expect(s.params.useFlowSigmas && s.params.flowShift == 3 && s.params.lambdaMinClipped == nil)
        let t20 = try s.tables(steps: 20)
        // set_timesteps(20): timesteps σ·1000 truncated to int64
        #expect(t20.timesteps == [999, 982, 963, 944, 922, 899, 874, 847, 817, 785, 749, 710, 666, 617, 562, 499, 428, 345, 249, 136])
        #expect(t20.sigmas == Self.floats([0x3f7f_ea24, 0x3f7b_7fd8, 0x3f76_c4d8, 0x3f71_b02c, 0x3f6c_377d, 0x3f66_4ecb, 0x3f5f_e818,
                                           0x3f58_f2f5, 0x3f51_5bfa, 0x3f49_0c0a, 0x3f3f_e769, 0x3f35_cc88, 0x3f2a_9262, 0x3f1e_064c,
                                           0x3f0f_e8f4, 0x3eff_d44b, 0x3edb_4594, 0x3eb1_182b, 0x3e7f_c961, 0x3e0b_8269, 0]))
    }

    @Test func flowPredictionTrajectoryMatchesDiffusers() throws {
        var s = try sanaScheduler()
        try s.setTimesteps(7)
        #expect(s.timesteps == [999, 947, 881, 799, 691, 545, 333])
        #expect(Self.close(s.tables.sigmas, [0.9996664524078369, 0.9470191597938538, 0.8819894194602966, 0.7996264696121216,
                                             0.6919347643852234, 0.5451073050498962, 0.33307400345802307, 0]))
        var x: [Float] = [0.5, -1.25, 2.0, 0.1, 3.0, -0.2]
        for (k, t) in s.timesteps.enumerated() {
            let eps = (0..<6).map { Float(sin(Double(k) + Double($0) * 0.7)) }
            x = try s.step(modelOutput: eps, timestep: t, sample: try s.scaleModelInput(x, timestep: t))
        }
        #expect(Self.close(x, Self.floats([0x3f6b_ae15, 0xbf92_b463, 0x3fde_7f69, 0xbece_f91d, 0x401f_62c0, 0xbef3_57e7])), "\(x)")
    }

    /// (steps, intermediate, timesteps, final sample = last denoised)
    static let scmCases: [(Int, Double?, [UInt32], [UInt32])] = [
        (2, 1.3, [0x3fc9_0ff9, 0x3fa6_6666, 0], [0xbf54_68d5, 0xbf66_7ab1, 0xbf19_6e6b, 0xbe7b_55c7, 0x3f48_92da, 0x3f5a_0820]),
        (1, nil, [0x3fc9_0ff9, 0], [0xb5f2_eef5, 0xbf24_eb27, 0xbf7c_46e8, 0xbf5c_fb50, 0xbeab_84fd, 0x3eb3_99f4]),
        (4, nil, [0x3fc9_0ff9, 0x3f96_cbfb, 0x3f49_0ff9, 0x3ec9_0ff9, 0],
         [0xbf7f_4de9, 0xbdf9_201e, 0x3f09_bf78, 0x3f12_aaa2, 0x3fd0_1764, 0x3f3f_5e79]),
    ]

    @Test(arguments: 0..<3)
    func scmTrajectoriesMatchDiffusers(index: Int) throws {
        let (steps, intermediate, timesteps, expected) = Self.scmCases[index]
        var s = try SCMScheduler(config: SchedulerConfig(className: "SCMScheduler", values: [:]))
        try s.setTimesteps(steps, maxTimesteps: 1.57080, intermediateTimesteps: intermediate)
        #expect(s.timesteps == Self.floats(timesteps))
        var generator = TorchGenerator(seed: Int64(7))
        var x: [Float] = [0.5, -1.25, 2.0, 0.1, 3.0, -0.2]
        var denoised: [Float] = []
        for (k, t) in s.timesteps.dropLast().enumerated() {
            let f = (0..<6).map { Float(sin(Double(k) + Double($0) * 0.7)) }
            let out = try s.step(modelOutput: f, timestep: t, sample: x, noise: generator.randn(count: 6))
            x = out.prevSample
            denoised = out.denoised
        }
        #expect(Self.close(x, Self.floats(expected)) && Self.close(denoised, Self.floats(expected)), "\(x)")
    }

    @Test func scmRejectsWhatDiffusersRejects() throws {
        var s = try SCMScheduler(config: SchedulerConfig(values: ["sigma_data": .double(0.5)]))
        #expect(throws: SchedulerError.self) { try s.setTimesteps(3, intermediateTimesteps: 1.3) }
        #expect(throws: SchedulerError.self) { try s.step(modelOutput: [0], timestep: 1, sample: [0], noise: [0]) }
        #expect(throws: SchedulerError.self) { try SCMScheduler(config: SchedulerConfig(values: ["prediction_type": .string("epsilon")])) }
    }
}
