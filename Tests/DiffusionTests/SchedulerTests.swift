import Foundation
import Testing
@testable import Diffusion
import Weights

/// The DiT Hub scheduler file (0.12-era): no timestep_spacing key.
let ditHubDDIM: [String: JSONValue] = [
    "_class_name": .string("DDIMScheduler"), "_diffusers_version": .string("0.12.0.dev0"),
    "beta_end": .double(0.02), "beta_schedule": .string("linear"), "beta_start": .double(0.0001),
    "clip_sample": .bool(false), "num_train_timesteps": .int(1000), "prediction_type": .string("epsilon"),
    "set_alpha_to_one": .bool(true), "steps_offset": .int(0), "trained_betas": .null,
]

@Suite struct SchedulerTests {
    func ints(_ v: [Float]) -> [Int] { v.map { Int($0) } }

    @Test func ddimLeading50IsEveryTwentieth() throws {
        // DDIMScheduler.from_config(hub).set_timesteps(50): 980, 960, …, 0
        let s = try DDIMScheduler(config: SchedulerConfig(json: ditHubDDIM))
        #expect(ints(try s.tables(steps: 50).timesteps) == Array(stride(from: 980, through: 0, by: -20)))
        // n=250 → 996, …, 0
        let t250 = try s.tables(steps: 250).timesteps
        #expect(t250.first == 996 && t250.last == 0 && t250.count == 250)
    }

    @Test func ddimDefaultsClipSampleAndLeading() throws {
        let p = try DDIMScheduler.params(SchedulerConfig())
        #expect(p.clipSample && p.timestepSpacing == "leading" && p.setAlphaToOne)
    }

    @Test func dpmFromOldDDIMConfigUsesItsOwnLinspaceDefault() throws {
        // DPMSolverMultistepScheduler.from_config(hub DDIM config).set_timesteps(25): 999, 959, 919, …
        let s = try DPMSolverMultistepScheduler(config: SchedulerConfig(json: ditHubDDIM))
        let ts = ints(try s.tables(steps: 25).timesteps)
        #expect(Array(ts.prefix(3)) == [999, 959, 919])
        #expect(ts.count == 25 && ts.last == 40)
    }

    @Test func dpmFromRecentDDIMConfigCarriesLeading() throws {
        var json = ditHubDDIM
        json["timestep_spacing"] = .string("leading")
        let ts = ints(try DPMSolverMultistepScheduler(config: SchedulerConfig(json: json)).tables(steps: 25).timesteps)
        #expect(Array(ts.prefix(2)) == [950, 912])
        #expect(ts.last == 38)
    }

    @Test func useDefaultValuesKeysAreDropped() throws {
        var json = ditHubDDIM
        json["timestep_spacing"] = .string("leading")
        json["_use_default_values"] = .array([.string("timestep_spacing")])
        let ts = ints(try DPMSolverMultistepScheduler(config: SchedulerConfig(json: json)).tables(steps: 25).timesteps)
        #expect(Array(ts.prefix(2)) == [999, 959])
    }

    @Test func flowMatchSD3Shift3() throws {
        // FlowMatchEulerDiscreteScheduler(shift=3.0).set_timesteps(28): 1000, 987.3806, 974.1077, …
        let s = try FlowMatchEulerDiscreteScheduler(config: SchedulerConfig(values: ["shift": .double(3.0)]))
        let t = try s.tables(steps: 28)
        #expect(t.timesteps.count == 28 && t.sigmas.count == 29 && t.sigmas.last == 0)
        #expect(t.timesteps[0] == 1000)
        #expect(abs(t.timesteps[1] - 987.3806) < 1e-4)
        #expect(abs(t.timesteps[2] - 974.1077) < 1e-4)
        #expect(abs(s.sigmaRange().1 - 0.002994012) < 1e-9)
    }

    @Test func unsupportedOptionsAreRefused() {
        #expect(throws: SchedulerError.self) {
            try DPMSolverMultistepScheduler(config: SchedulerConfig(values: ["use_karras_sigmas": .bool(true)]))
        }
        #expect(throws: SchedulerError.self) {
            try DDIMScheduler(config: SchedulerConfig(values: ["beta_schedule": .string("cubic")]))
        }
        #expect(throws: SchedulerError.self) {
            try DDIMScheduler(config: SchedulerConfig()).tables(steps: 0)
        }
    }

    @Test func tablesRoundTripThroughJSONAndRebuildTheScheduler() throws {
        for name in SamplerName.allCases {
            let t = try Schedulers.tables(name, config: SchedulerConfig(json: ditHubDDIM), steps: 12)
            let data = try JSONEncoder().encode(t)
            let back = try JSONDecoder().decode(SchedulerTables.self, from: data)
            #expect(back == t)
            let s = try Schedulers.make(tables: back)
            #expect(s.timesteps == t.timesteps && s.sampler == name)
            #expect(try Schedulers.cacheKey(name, config: SchedulerConfig(json: ditHubDDIM), steps: 12) == t.cacheKey)
        }
    }

    @Test func eulerLinspaceTimestepsAndInitSigma() throws {
        // EulerDiscreteScheduler(): set_timesteps(10) → linspace(0, 999, 10)[::-1] as float32
        let t = try EulerDiscreteScheduler(config: SchedulerConfig()).tables(steps: 10)
        #expect(t.timesteps.first == 999 && t.timesteps.last == 0 && t.timesteps[1] == 888)
        #expect(t.initNoiseSigma == t.sigmas.max())
        #expect(t.sigmas.last == 0)
    }

    // MARK: against diffusers (fixtures)

    @Test func betasAndAlphasCumprodAreBitExact() throws {
        let f = try #require(try PipeFixtures.file("expected/schedulers.safetensors"))
        let dir = try #require(PipeFixtures.url("latent-dit/scheduler/scheduler_config.json"))
        let p = try DDIMScheduler.params(SchedulerConfig(contentsOf: dir))
        let ac = try p.beta.alphasCumprod()
        let betas = TableMath.torchLinspace(p.beta.betaStart, p.beta.betaEnd, p.beta.numTrainTimesteps)
        #expect(betas.map(\.bitPattern) == (try PipeFixtures.floats(f, "ddim_betas")).map(\.bitPattern))
        #expect(ac.map(\.bitPattern) == (try PipeFixtures.floats(f, "ddim_alphas_cumprod")).map(\.bitPattern))
    }

    /// Replays every scheduler step of a fixture case: step(model_output[k], t_k, input[k]) must give input[k+1]
    /// (and the final latents after the last step).
    func replay(_ caseName: String, _ sampler: SamplerName, folder: String) throws -> (Float, Float) {
        let f = try #require(try PipeFixtures.file("expected/\(caseName).safetensors"))
        let cfgURL = try #require(PipeFixtures.url("\(folder)/scheduler/scheduler_config.json"))
        let config = try SchedulerConfig(contentsOf: cfgURL)
        let ts = try PipeFixtures.floats(f, "timesteps")
        let K = ts.count
        var s = try Schedulers.make(sampler, config: config)
        try s.setTimesteps(K)
        #expect(s.timesteps.map(\.bitPattern) == ts.map(\.bitPattern))
        if f.contains("sigmas") {
            let ref = try PipeFixtures.floats(f, "sigmas")
            #expect(PipeFixtures.maxAbsDiff(s.tables.sigmas, ref) <= 1e-6 * PipeFixtures.maxAbs(ref))
        }
        let input = try PipeFixtures.floats(f, "step_input")
        let mo = try PipeFixtures.floats(f, "step_model_output")
        let final = try PipeFixtures.floats(f, "latents_final")
        let per = input.count / K          // nB·C·H·W
        let row = final.count              // B·C·H·W (first half of the rows)
        var worst: Float = 0, scale: Float = 0
        for k in 0..<K {
            // Step only the conditional half; the other half is identical in diffusers.
            let x = Array(input[(k * per)..<(k * per + row)])
            let m = Array(mo[(k * per)..<(k * per + row)])
            let next = try s.step(modelOutput: m, timestep: ts[k], sample: x)
            let ref = k + 1 < K ? Array(input[((k + 1) * per)..<((k + 1) * per + row)]) : final
            worst = max(worst, PipeFixtures.maxAbsDiff(next, ref) / max(PipeFixtures.maxAbs(ref), 1))
            scale = max(scale, PipeFixtures.maxAbs(ref))
        }
        return (worst, scale)
    }

    @Test func ddimStepsReproduceDiffusers() throws {
        let (rel, _) = try replay("latent-ddim-cfg4", .ddim, folder: "latent-dit")
        #expect(rel <= 1e-6)   // torch takes `** 0.5` of the 0-dim alphas through MKL VML (1 ulp, docs/engine.md §4.0)
    }

    @Test func dpmSolverStepsReproduceDiffusers() throws {
        let (rel, _) = try replay("latent-dpmpp2m-cfg2.5", .dpmpp2m, folder: "latent-dit")
        #expect(rel <= 1e-6)   // sigmas are 1-ulp (torch VML sqrt), log/exp of the σ scalars likewise
    }

    @Test func flowEulerStepsReproduceDiffusers() throws {
        let (rel, _) = try replay("pixel-flow-cfg3", .flowEuler, folder: "pixel-dit")
        #expect(rel == 0)   // bit-exact: sigmas are exact and the step is x + dt·v
    }

    @Test func flowTrainSigmasMatch() throws {
        let f = try #require(try PipeFixtures.file("expected/schedulers.safetensors"))
        let cfg = try #require(PipeFixtures.url("pixel-dit/scheduler/scheduler_config.json"))
        let s = try FlowMatchEulerDiscreteScheduler(config: SchedulerConfig(contentsOf: cfg))
        let ref = try PipeFixtures.floats(f, "flow_sigmas_train")
        let (mx, mn) = s.sigmaRange()
        #expect(Float(mx) == ref.first && Float(mn) == ref.last)
    }
}

@Suite struct SchedulerSigmaBitTests {
    @Test func flowSigmasShift2Steps8AreBitExact() throws {
        // s = FlowMatchEulerDiscreteScheduler(shift=2.0); s.set_timesteps(8); s.sigmas (float32 bits)
        let t = try FlowMatchEulerDiscreteScheduler(config: SchedulerConfig(values: ["shift": .double(2.0)])).tables(steps: 8)
        #expect(t.sigmas.map(\.bitPattern) == [0x3f80_0000, 0x3f6c_599d, 0x3f55_6ec9, 0x3f3a_5bf9, 0x3f19_e2de,
                                               0x3ee4_704a, 0x3e81_5735, 0x3b82_ae12, 0])
    }

    @Test func dpmLeadingSigmas12StepsMatchWithinOneUlp() throws {
        // d = DPMSolverMultistepScheduler.from_config(latent-dit DDIM config); d.set_timesteps(12); d.sigmas
        var json = ditHubDDIM
        json["timestep_spacing"] = .string("leading")
        let t = try DPMSolverMultistepScheduler(config: SchedulerConfig(json: json)).tables(steps: 12)
        let ref: [UInt32] = [0x4287_c914, 0x420a_b109, 0x4196_1754, 0x412b_dfa6, 0x40cf_b2c2, 0x4083_c31c, 0x402e_0e90,
                             0x3fec_5f44, 0x3fa1_f78a, 0x3f59_9963, 0x3f07_905f, 0x3e85_c228, 0]
        // torch's `** 0.5` runs through MKL VML (docs/engine.md §4.0): equal to 1 ulp.
        for (a, b) in zip(t.sigmas.map(\.bitPattern), ref) { #expect(abs(Int64(a) - Int64(b)) <= 1) }
    }
}

@Suite struct BetaScheduleBitTests {
    /// Σ (i+1)·bits(alphas_cumprod[i]) mod 2^61−1, as printed by
    /// `b = DDIMScheduler(**kw).alphas_cumprod.numpy().view(np.uint32).astype(np.uint64);
    ///  (b * np.arange(1, 1001, dtype=np.uint64)).sum() % (2**61-1)`
    func checksum(_ ac: [Float]) -> UInt64 {
        var s: UInt64 = 0
        for (i, v) in ac.enumerated() { s = (s + UInt64(v.bitPattern) * UInt64(i + 1)) % ((1 << 61) - 1) }
        return s
    }

    func ac(_ values: [String: JSONValue]) throws -> [Float] {
        try DDIMScheduler.params(SchedulerConfig(values: values)).beta.alphasCumprod()
    }

    @Test func linearScheduleIsBitExact() throws {
        #expect(checksum(try ac([:])) == 502_244_368_571_207)
    }

    @Test func scaledLinearScheduleIsBitExact() throws {
        let a = try ac(["beta_schedule": .string("scaled_linear"), "beta_start": .double(0.00085), "beta_end": .double(0.012)])
        #expect(checksum(a) == 517_155_731_131_159)
    }

    @Test func cosineScheduleIsBitExact() throws {
        #expect(checksum(try ac(["beta_schedule": .string("squaredcos_cap_v2")])) == 519_199_033_080_031)
    }
}
