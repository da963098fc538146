import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

// DiTTransformer2DModel and AutoencoderKL against the diffusers 0.42.1 reference outputs in Fixtures/
// (random-weight pipelines, see Fixtures/README.md), plus config defaults and load/input errors.

enum ModelFixtures {
    static let root: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func store(_ path: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: root.appendingPathComponent(path))
    }

    static func config<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: root.appendingPathComponent(path)))
    }

    static func tensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
        let view = try file.weight(name)
        return Tensor(shape: view.shape, data: Array(view.buffer))
    }

    static func latentDiT() throws -> DiTTransformer2DModel {
        try DiTTransformer2DModel(config: config(DiTTransformer2DModel.Config.self, "latent-dit/transformer/config.json"),
                                  weights: store("latent-dit/transformer/diffusion_pytorch_model.safetensors"))
    }

    static func pixelDiT() throws -> DiTTransformer2DModel {
        try DiTTransformer2DModel(config: config(DiTTransformer2DModel.Config.self, "pixel-dit/transformer/config.json"),
                                  weights: store("pixel-dit/transformer/diffusion_pytorch_model.safetensors"))
    }

    static func vae() throws -> AutoencoderKL {
        try AutoencoderKL(config: config(AutoencoderKL.Config.self, "latent-dit/vae/config.json"),
                          weights: store("latent-dit/vae/diffusion_pytorch_model.safetensors"))
    }
}

/// max |a − b| / max |b|
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    let scale = b.map { abs(Double($0)) }.max() ?? 0
    let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
    return worst / max(scale, 1e-30)
}

@Suite struct DiTFixtureTests {
    @Test func timestepSinusoidsMatchTorchForIntegerAndFloatTimesteps() throws {
        let file = try ModelFixtures.store("expected/latent-dit-forward.safetensors")
        for (name, t) in [("temb_sinusoid_t_int", [Float]([0, 1, 37, 500, 999])),
                          ("temb_sinusoid_t_float", [Float]([999.0, 500.5, 973.9, 0.25]))] {
            let expected = try ModelFixtures.tensor(file, name)
            let ours = timestepEmbedding(t)
            #expect(expected.shape == [t.count, 256])
            // sin/cos of arguments up to ~1000: torch's float32 exp/sin/cos (MKL) differ by an ulp of the
            // argument (docs/engine.md §5.7), i.e. ~1e-4 absolute at t = 999.
            let worst = zip(ours, expected.data).map { abs($0 - $1) }.max()!
            #expect(worst < 2e-4, "\(name): max abs diff \(worst)")
        }
    }

    @Test func eachBlockUsesItsOwnTimestepAndClassEmbedder() throws {
        let file = try ModelFixtures.store("expected/latent-dit-forward.safetensors")
        let model = try ModelFixtures.latentDiT()
        let temb = timestepEmbedding([999, 500, 20, 0]), labels = [1, 3, 1000, 7]
        for (l, name) in ["cond_block0", "cond_block1"].enumerated() {
            let expected = try ModelFixtures.tensor(file, name)
            var c = [Float](repeating: 0, count: 4 * 16), scratch = c
            model.blocks[l].embedder.condition(&c, temb: temb, labels: labels, scratch: &scratch)
            #expect(relativeError(c, expected.data) < 1e-5, "\(name)")
        }
    }

    @Test func latentForwardMatchesDiffusers() throws {
        let file = try ModelFixtures.store("expected/latent-dit-forward.safetensors")
        let model = try ModelFixtures.latentDiT()
        let out = try model.forward(ModelFixtures.tensor(file, "x"), timesteps: [999, 500, 20, 0], labels: [1, 3, 1000, 7])
        let expected = try ModelFixtures.tensor(file, "out")
        #expect(out.shape == [4, 8, 8, 8])
        #expect(relativeError(out.data, expected.data) < 1e-5)
    }

    @Test func nonSquareLatentForwardMatchesDiffusers() throws {
        let file = try ModelFixtures.store("expected/latent-dit-forward.safetensors")
        let model = try ModelFixtures.latentDiT()
        let out = try model.forward(ModelFixtures.tensor(file, "x_8x12"), timesteps: [980, 480], labels: [2, 1000])
        let expected = try ModelFixtures.tensor(file, "out_8x12")
        #expect(out.shape == [2, 8, 8, 12])
        #expect(relativeError(out.data, expected.data) < 1e-5)
    }

    @Test func pixelSpaceForwardsMatchDiffusersWithFloatTimesteps() throws {
        let file = try ModelFixtures.store("expected/pixel-dit-forward.safetensors")
        let model = try ModelFixtures.pixelDiT()
        #expect(model.nullClass == 6 && model.outChannels == 3 && model.inChannels == 3)
        for (x, name) in [("x", "out"), ("x_16x24", "out_16x24")] {
            let out = try model.forward(ModelFixtures.tensor(file, x), timesteps: [973.5, 12.25], labels: [2, 6])
            let expected = try ModelFixtures.tensor(file, name)
            #expect(out.shape == expected.shape)
            #expect(relativeError(out.data, expected.data) < 1e-5, "\(name)")
        }
    }

    @Test func batchRowsAreIndependent() throws {
        let file = try ModelFixtures.store("expected/latent-dit-forward.safetensors")
        let model = try ModelFixtures.latentDiT()
        let x = try ModelFixtures.tensor(file, "x")
        let all = try model.forward(x, timesteps: [999, 500, 20, 0], labels: [1, 3, 1000, 7])
        let row = 4 * 8 * 8
        let third = Tensor(shape: [1, 4, 8, 8], data: Array(x.data[(2 * row)..<(3 * row)]))
        let alone = try model.forward(third, timesteps: [20], labels: [1000])
        #expect(relativeError(alone.data, Array(all.data[(2 * 2 * row)..<(3 * 2 * row)])) < 1e-6)
    }
}

@Suite struct VAEFixtureTests {
    @Test func decodeMatchesDiffusersOnSquareAndNonSquareLatents() throws {
        let file = try ModelFixtures.store("expected/latent-dit-vae.safetensors")
        let vae = try ModelFixtures.vae()
        #expect(vae.config.spatialScale == 4 && vae.hasEncoder)
        for (z, name, shape) in [("z", "decoded", [1, 3, 32, 32]), ("z_8x12", "decoded_8x12", [1, 3, 32, 48])] {
            let out = try vae.decode(ModelFixtures.tensor(file, z))
            #expect(out.shape == shape)
            #expect(relativeError(out.data, try ModelFixtures.tensor(file, name).data) < 1e-5, "\(name)")
        }
    }

    @Test func encodeGivesDiffusersLatentDistribution() throws {
        let file = try ModelFixtures.store("expected/latent-dit-vae.safetensors")
        let dist = try ModelFixtures.vae().encode(ModelFixtures.tensor(file, "encode_input"))
        #expect(dist.mean.shape == [1, 4, 8, 8])
        #expect(relativeError(dist.mode().data, try ModelFixtures.tensor(file, "encode_mean").data) < 1e-5)
        #expect(relativeError(dist.logvar.data, try ModelFixtures.tensor(file, "encode_logvar").data) < 1e-5)
        #expect(relativeError(dist.std.data, try ModelFixtures.tensor(file, "encode_std").data) < 1e-5)
    }

    @Test func vaeDecoderUndoesScalingWithAFloat32MultiplyByTheReciprocal() throws {
        let file = try ModelFixtures.store("expected/latent-dit-vae.safetensors")
        let vae = try ModelFixtures.vae()
        let z = try ModelFixtures.tensor(file, "z")
        let decoder = VAEDecoder(vae: vae)
        #expect(decoder.scale == 4)
        let inverse = Float(1 / 0.18215)
        let direct = try vae.decode(Tensor(shape: z.shape, data: z.data.map { $0 * inverse }))
        #expect(try decoder.decode(z) == direct)
    }

    @Test func legacyAttentionNamesAndConvShapedWeightsLoad() throws {
        let base = try ModelFixtures.store("latent-dit/vae/diffusion_pytorch_model.safetensors")
        let legacy = LegacyAttentionStore(base: base)
        let vae = try AutoencoderKL(config: ModelFixtures.config(AutoencoderKL.Config.self, "latent-dit/vae/config.json"), weights: legacy)
        let file = try ModelFixtures.store("expected/latent-dit-vae.safetensors")
        let out = try vae.decode(ModelFixtures.tensor(file, "z"))
        #expect(relativeError(out.data, try ModelFixtures.tensor(file, "decoded").data) < 1e-5)
    }

    @Test func pixelSpaceDecoderIsTheIdentity() throws {
        let x = Tensor(shape: [1, 3, 2, 2], data: (0..<12).map(Float.init))
        #expect(try PixelSpaceDecoder().decode(x) == x)
        #expect(PixelSpaceDecoder().scale == 1)
    }
}

@Suite struct ModelConfigAndErrorTests {
    @Test func missingConfigKeysTakeTheClassDefaults() throws {
        let dit = try JSONDecoder().decode(DiTTransformer2DModel.Config.self, from: Data(#"{"out_channels": 8, "future_key": [1]}"#.utf8))
        #expect(dit.numAttentionHeads == 16 && dit.attentionHeadDim == 72 && dit.numLayers == 28 && dit.innerDim == 1152)
        #expect(dit.inChannels == 4 && dit.resolvedOutChannels == 8 && dit.sampleSize == 32 && dit.patchSize == 2)
        #expect(dit.numEmbedsAdaNorm == 1000 && dit.normEps == 1e-5 && dit.normType == "ada_norm_zero")
        let noOut = try JSONDecoder().decode(DiTTransformer2DModel.Config.self, from: Data(#"{"in_channels": 3, "out_channels": null}"#.utf8))
        #expect(noOut.resolvedOutChannels == 3)
        let vae = try JSONDecoder().decode(AutoencoderKL.Config.self, from: Data(#"{"block_out_channels": [128, 256, 512, 512], "sample_size": [256, 256]}"#.utf8))
        #expect(vae.scalingFactor == 0.18215 && vae.shiftFactor == nil && vae.layersPerBlock == 1 && vae.normNumGroups == 32)
        #expect(vae.latentChannels == 4 && vae.spatialScale == 8 && vae.sampleSize == 256 && vae.usePostQuantConv)
    }

    @Test func missingWeightIsNamedWithItsExpectedShape() throws {
        let base = try ModelFixtures.store("latent-dit/transformer/diffusion_pytorch_model.safetensors")
        let store = EditedStore(base: base, hidden: ["transformer_blocks.1.attn1.to_k.weight"])
        let config = try ModelFixtures.config(DiTTransformer2DModel.Config.self, "latent-dit/transformer/config.json")
        let error = #expect(throws: ModelError.self) { try DiTTransformer2DModel(config: config, weights: store) }
        #expect(error?.code == .missingWeight)
        #expect(error?.message.contains("transformer_blocks.1.attn1.to_k.weight [16, 16]") == true)
    }

    @Test func wrongWeightShapeIsReported() throws {
        let base = try ModelFixtures.store("latent-dit/transformer/diffusion_pytorch_model.safetensors")
        var config = try ModelFixtures.config(DiTTransformer2DModel.Config.self, "latent-dit/transformer/config.json")
        config.outChannels = 4   // the file's proj_out_2 is [32, 16]
        let error = #expect(throws: ModelError.self) { try DiTTransformer2DModel(config: config, weights: base) }
        #expect(error?.code == .weightShape)
        #expect(error?.message.contains("proj_out_2.weight") == true)
    }

    @Test func unsupportedNormTypeIsRejected() throws {
        let base = try ModelFixtures.store("latent-dit/transformer/diffusion_pytorch_model.safetensors")
        var config = try ModelFixtures.config(DiTTransformer2DModel.Config.self, "latent-dit/transformer/config.json")
        config.normType = "ada_norm_single"
        let error = #expect(throws: ModelError.self) { try DiTTransformer2DModel(config: config, weights: base) }
        #expect(error?.code == .unsupportedConfig)
    }

    @Test func badInputsThrowInsteadOfCrashing() throws {
        let model = try ModelFixtures.latentDiT()
        let x = Tensor(zeros: [1, 4, 8, 8])
        for (input, t, y) in [(Tensor(zeros: [1, 3, 8, 8]), [Float(1)], [0]), (Tensor(zeros: [1, 4, 7, 8]), [1], [0]),
                              (x, [1, 2], [0]), (x, [1], [1001]), (x, [1], [-1])] {
            let error = #expect(throws: ModelError.self) { try model.forward(input, timesteps: t, labels: y) }
            #expect(error?.code == .badInput)
        }
        let vae = try ModelFixtures.vae()
        #expect(throws: ModelError.self) { try vae.decode(Tensor(zeros: [1, 3, 8, 8])) }
        #expect(throws: ModelError.self) { try vae.encode(Tensor(zeros: [1, 3, 30, 32])) }
    }
}

/// A weight store with some tensors removed.
struct EditedStore: WeightStore {
    let base: WeightStore
    let hidden: Set<String>
    func contains(_ name: String) -> Bool { !hidden.contains(name) && base.contains(name) }
    func weight(_ name: String) throws -> WeightView {
        guard contains(name) else { throw ModelError(.missingWeight, name) }
        return try base.weight(name)
    }
}

/// Presents the mid-block attention under its pre-0.14 names (query/key/value/proj_attn) with
/// `[c, c, 1, 1]` weights, as in old LDM-converted files.
struct LegacyAttentionStore: WeightStore {
    let base: WeightStore
    static let renames = ["query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"]

    func modern(_ name: String) -> String? {
        for (old, new) in Self.renames where name.contains(".attentions.0.\(old).") {
            return name.replacingOccurrences(of: ".attentions.0.\(old).", with: ".attentions.0.\(new).")
        }
        return nil
    }

    func contains(_ name: String) -> Bool {
        if Self.renames.values.contains(where: { name.contains(".attentions.0.\($0).") }) { return false }
        return base.contains(modern(name) ?? name)
    }

    func weight(_ name: String) throws -> WeightView {
        guard contains(name) else { throw ModelError(.missingWeight, name) }
        let view = try base.weight(modern(name) ?? name)
        if modern(name) != nil, view.shape.count == 2 {
            return WeightView(shape: view.shape + [1, 1], pointer: view.pointer, owner: view.owner)
        }
        return view
    }
}
