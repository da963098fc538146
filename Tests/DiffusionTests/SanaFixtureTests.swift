import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

// SanaTransformer2DModel, PixArtTransformer2DModel and AutoencoderDC against diffusers 0.42.1 on the random-weight
// components of Fixtures/sana/ (tools/reference/make_sana_fixtures.py; Fixtures/README.md, "Sana, PixArt and DC-AE").

enum SanaFixtures {
    /// The component in sana/<name>/, built by `make(config, weights)`.
    static func load<C: Decodable, M>(_ name: String, _ make: (C, WeightStore) throws -> M) throws -> M {
        try make(ModelFixtures.config(C.self, "sana/\(name)/config.json"),
                 ModelFixtures.store("sana/\(name)/diffusion_pytorch_model.safetensors"))
    }

    static func sana(_ name: String) throws -> SanaTransformer2DModel { try load(name, SanaTransformer2DModel.init) }

    static func expected(_ name: String) throws -> SafeTensorsFile { try ModelFixtures.store("expected/\(name).safetensors") }
}

@Suite struct SanaTransformerFixtureTests {
    /// (component, has guidance embedding)
    static let components: [(String, Bool)] = [("sana-transformer", false), ("sana-pe-transformer", false), ("sprint-transformer", true)]

    @Test(arguments: components)
    func forwardMatchesDiffusersOnSquareAndNonSquareGrids(component: (String, Bool)) throws {
        let (name, guided) = component
        let model = try SanaFixtures.sana(name)
        let file = try SanaFixtures.expected(name)
        let caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let mask = try ModelFixtures.tensor(file, "encoder_attention_mask").data
        let t = try ModelFixtures.tensor(file, "timestep").data
        let guidance = guided ? try ModelFixtures.tensor(file, "guidance").data : nil
        for (x, name) in [("x", "out"), ("x_8x12", "out_8x12")] {
            let out = try model.forward(ModelFixtures.tensor(file, x), timesteps: t, caption: caption, captionMask: mask, guidance: guidance)
            let expected = try ModelFixtures.tensor(file, name)
            #expect(out.shape == expected.shape)
            let error = relativeError(out.data, expected.data)
            #expect(error < 1e-5, "\(component.0) \(name): relative error \(error)")
        }
    }

    @Test func maskedCaptionTokensDoNotChangeTheOutput() throws {
        // Row 1 keeps 3 of 6 caption tokens: replacing the 3 masked ones must not change its output.
        let model = try SanaFixtures.sana("sana-transformer")
        let file = try SanaFixtures.expected("sana-transformer")
        let x = try ModelFixtures.tensor(file, "x")
        var caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let mask = try ModelFixtures.tensor(file, "encoder_attention_mask").data
        let t = try ModelFixtures.tensor(file, "timestep").data
        let before = try model.forward(x, timesteps: t, caption: caption, captionMask: mask)
        for token in 3..<6 { for j in 0..<12 { caption.data[(6 + token) * 12 + j] = 7 } }
        let after = try model.forward(x, timesteps: t, caption: caption, captionMask: mask)
        // Masked rows are never read (CaptionKeys): both rows keep their bits.
        #expect(after.data == before.data)
    }

    @Test func anItemThatMasksEveryCaptionTokenAttendsToAllOfThem() throws {
        // torch: every key gets the same −10000 bias, so softmax weighs all tokens as if none were masked (up to the
        // rounding of s − 10000); the item must not come out NaN or differ from its all-kept output beyond that.
        let model = try SanaFixtures.sana("sana-transformer")
        let file = try SanaFixtures.expected("sana-transformer")
        let x = try ModelFixtures.tensor(file, "x"), caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let t = try ModelFixtures.tensor(file, "timestep").data
        let none = try model.forward(x, timesteps: t, caption: caption, captionMask: [Float](repeating: 0, count: 12))
        let all = try model.forward(x, timesteps: t, caption: caption, captionMask: [Float](repeating: 1, count: 12))
        #expect(none.data.allSatisfy { $0.isFinite })
        #expect(none.data != all.data)   // the biased path ran
        #expect(relativeError(none.data, all.data) < 1e-2)
    }

    @Test func batchRowsAreIndependentOfEachOther() throws {
        let model = try SanaFixtures.sana("sprint-transformer")
        let file = try SanaFixtures.expected("sprint-transformer")
        let x = try ModelFixtures.tensor(file, "x"), caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let mask = try ModelFixtures.tensor(file, "encoder_attention_mask").data
        let t = try ModelFixtures.tensor(file, "timestep").data, g = try ModelFixtures.tensor(file, "guidance").data
        let both = try model.forward(x, timesteps: t, caption: caption, captionMask: mask, guidance: g)
        let row = x.count / 2, capRow = caption.count / 2
        let alone = try model.forward(Tensor(shape: [1, 4, 8, 8], data: Array(x.data[row...])), timesteps: [t[1]],
                                      caption: Tensor(shape: [1, 6, 12], data: Array(caption.data[capRow...])),
                                      captionMask: Array(mask[6...]), guidance: [g[1]])
        #expect(alone.data == Array(both.data[(both.count / 2)...]))
    }

    @Test func configDefaultsAndBadInputs() throws {
        let defaults = try JSONDecoder().decode(SanaTransformer2DModel.Config.self, from: Data("{}".utf8))
        #expect(defaults.inChannels == 32 && defaults.innerDim == 2240 && defaults.numLayers == 20 && defaults.patchSize == 1)
        #expect(defaults.interpolationScale == nil && defaults.qkNorm == nil && !defaults.guidanceEmbeds && defaults.timestepScale == 1)
        let sprint = try ModelFixtures.config(SanaTransformer2DModel.Config.self, "sana/sprint-transformer/config.json")
        #expect(sprint.guidanceEmbeds && sprint.timestepScale == 1000 && sprint.guidanceEmbedsScale == 0.1 && sprint.qkNorm == "rms_norm_across_heads")

        let model = try SanaFixtures.sana("sana-transformer")
        let x = Tensor(zeros: [1, 4, 8, 8]), caption = Tensor(zeros: [1, 6, 12])
        for (input, cap, t, mask, g) in [(Tensor(zeros: [1, 3, 8, 8]), caption, [Float(1)], [Float]?.none, [Float]?.none),
                                         (x, Tensor(zeros: [1, 6, 11]), [1], nil, nil),
                                         (x, caption, [1, 2], nil, nil),
                                         (x, caption, [1], [1, 1], nil),
                                         (x, caption, [1], nil, [0.5])] {
            let error = #expect(throws: ModelError.self) { try model.forward(input, timesteps: t, caption: cap, captionMask: mask, guidance: g) }
            #expect(error?.code == .badInput)
        }
        let sprintModel = try SanaFixtures.sana("sprint-transformer")
        let error = #expect(throws: ModelError.self) { try sprintModel.forward(x, timesteps: [1], caption: caption, captionMask: nil) }
        #expect(error?.message.contains("guidance") == true)
    }

    @Test func unsupportedQKNormAndMissingWeightsAreNamed() throws {
        let base = try ModelFixtures.store("sana/sana-pe-transformer/diffusion_pytorch_model.safetensors")
        var config = try ModelFixtures.config(SanaTransformer2DModel.Config.self, "sana/sana-pe-transformer/config.json")
        let missing = EditedStore(base: base, hidden: ["transformer_blocks.1.attn1.norm_k.weight"])
        let error = #expect(throws: ModelError.self) { try SanaTransformer2DModel(config: config, weights: missing) }
        #expect(error?.code == .missingWeight && error?.message.contains("transformer_blocks.1.attn1.norm_k.weight") == true)
        config.qkNorm = "l2"
        let unsupported = #expect(throws: ModelError.self) { try SanaTransformer2DModel(config: config, weights: base) }
        #expect(unsupported?.code == .unsupportedConfig && unsupported?.message.contains("l2") == true)
    }
}

@Suite struct AutoencoderDCFixtureTests {
    static func vae(_ name: String) throws -> AutoencoderDC { try SanaFixtures.load(name, AutoencoderDC.init) }

    @Test(arguments: ["dcae-sana", "dcae-in"])
    func decodeMatchesDiffusersIncludingTheQuadraticAttentionSize(name: String) throws {
        let vae = try Self.vae(name)
        let file = try SanaFixtures.expected(name)
        #expect(vae.config.spatialScale == 4 && vae.hasEncoder)
        for (z, out) in [("z", "decoded"), ("z_4x6", "decoded_4x6"), ("z_2x2", "decoded_2x2")] {
            let decoded = try vae.decode(ModelFixtures.tensor(file, z))
            let expected = try ModelFixtures.tensor(file, out)
            #expect(decoded.shape == expected.shape)
            let error = relativeError(decoded.data, expected.data)
            #expect(error < 1e-5, "\(name) \(out): relative error \(error)")
        }
    }

    @Test(arguments: ["dcae-sana", "dcae-in"])
    func encodeMatchesDiffusers(name: String) throws {
        let vae = try Self.vae(name)
        let file = try SanaFixtures.expected(name)
        for (x, out) in [("image", "encoded"), ("image_16x24", "encoded_16x24")] {
            let encoded = try vae.encode(ModelFixtures.tensor(file, x))
            let expected = try ModelFixtures.tensor(file, out)
            #expect(encoded.shape == expected.shape)
            let error = relativeError(encoded.data, expected.data)
            #expect(error < 1e-5, "\(name) \(out): relative error \(error)")
        }
    }

    @Test func batchedDecodeEqualsEachItemAlone() throws {
        let vae = try Self.vae("dcae-sana")
        let z = try ModelFixtures.tensor(SanaFixtures.expected("dcae-sana"), "z_4x6")
        let both = try vae.decode(z)
        let half = z.count / 2
        let second = try vae.decode(Tensor(shape: [1, 8, 4, 6], data: Array(z.data[half...])))
        #expect(second.data == Array(both.data[(both.count / 2)...]))
    }

    @Test func decoderDividesByTheScalingFactor() throws {
        let vae = try Self.vae("dcae-sana")
        #expect(vae.config.scalingFactor == 0.41407)
        let z = try ModelFixtures.tensor(SanaFixtures.expected("dcae-sana"), "z")
        let direct = try vae.decode(Tensor(shape: z.shape, data: z.data.map { $0 / Float(0.41407) }))
        #expect(try DCAEDecoder(vae: vae).decode(z) == direct)
        #expect(DCAEDecoder(vae: vae).scale == 4)
    }

    @Test func configDefaultsAreTheF32C32LayoutAndBadInputsThrow() throws {
        let defaults = try JSONDecoder().decode(AutoencoderDC.Config.self, from: Data(#"{"decoder_norm_types": "rms_norm"}"#.utf8))
        #expect(defaults.latentChannels == 32 && defaults.spatialScale == 32 && defaults.decoderNormTypes == ["rms_norm"])
        #expect(defaults.encoderLayersPerBlock == [2, 2, 2, 3, 3, 3] && defaults.upsampleBlockType == "pixel_shuffle")
        let vae = try Self.vae("dcae-in")
        #expect(throws: ModelError.self) { try vae.decode(Tensor(zeros: [1, 4, 4, 4])) }
        let error = #expect(throws: ModelError.self) { try vae.encode(Tensor(zeros: [1, 3, 18, 16])) }
        #expect(error?.code == .badInput)
        var config = try ModelFixtures.config(AutoencoderDC.Config.self, "sana/dcae-in/config.json")
        config.decoderNormTypes = ["group_norm"]
        let unsupported = #expect(throws: ModelError.self) {
            try AutoencoderDC(config: config, weights: ModelFixtures.store("sana/dcae-in/diffusion_pytorch_model.safetensors"))
        }
        #expect(unsupported?.code == .unsupportedConfig && unsupported?.message.contains("group_norm") == true)
        let decodeOnly = EditedStore(base: try ModelFixtures.store("sana/dcae-sana/diffusion_pytorch_model.safetensors"),
                                     hidden: ["encoder.conv_out.weight"])
        let noEncoder = try AutoencoderDC(config: ModelFixtures.config(AutoencoderDC.Config.self, "sana/dcae-sana/config.json"), weights: decodeOnly)
        #expect(!noEncoder.hasEncoder)
        #expect(throws: ModelError.self) { try noEncoder.encode(Tensor(zeros: [1, 3, 16, 16])) }
    }
}

@Suite struct PixArtTransformerFixtureTests {
    static func model(_ name: String) throws -> PixArtTransformer2DModel { try SanaFixtures.load(name, PixArtTransformer2DModel.init) }

    @Test(arguments: ["pixart-sigma-transformer", "pixart-alpha-transformer"])
    func forwardMatchesDiffusersOnSquareAndNonSquareGrids(name: String) throws {
        let model = try Self.model(name)
        let file = try SanaFixtures.expected(name)
        let caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let mask = try ModelFixtures.tensor(file, "encoder_attention_mask").data
        let t = try ModelFixtures.tensor(file, "timestep").data
        let sized = model.config.resolvedAdditionalConditions
        #expect(sized == (name == "pixart-alpha-transformer"))
        for (x, out, suffix) in [("x", "out", ""), ("x_8x12", "out_8x12", "_8x12")] {
            let resolution = sized ? try ModelFixtures.tensor(file, "resolution" + suffix).data : nil
            let aspect = sized ? try ModelFixtures.tensor(file, "aspect_ratio" + suffix).data : nil
            let result = try model.forward(ModelFixtures.tensor(file, x), timesteps: t, caption: caption, captionMask: mask,
                                           resolution: resolution, aspectRatio: aspect)
            let expected = try ModelFixtures.tensor(file, out)
            #expect(result.shape == expected.shape)
            let error = relativeError(result.data, expected.data)
            #expect(error < 1e-5, "\(name) \(out): relative error \(error)")
        }
    }

    @Test func batchRowsAreIndependentAndSizeConditionsAreRequired() throws {
        let model = try Self.model("pixart-alpha-transformer")
        let file = try SanaFixtures.expected("pixart-alpha-transformer")
        let x = try ModelFixtures.tensor(file, "x"), caption = try ModelFixtures.tensor(file, "encoder_hidden_states")
        let mask = try ModelFixtures.tensor(file, "encoder_attention_mask").data
        let res = try ModelFixtures.tensor(file, "resolution").data, ar = try ModelFixtures.tensor(file, "aspect_ratio").data
        let both = try model.forward(x, timesteps: [999, 20], caption: caption, captionMask: mask, resolution: res, aspectRatio: ar)
        let alone = try model.forward(Tensor(shape: [1, 4, 8, 8], data: Array(x.data[(x.count / 2)...])), timesteps: [20],
                                      caption: Tensor(shape: [1, 6, 12], data: Array(caption.data[(caption.count / 2)...])),
                                      captionMask: Array(mask[6...]), resolution: Array(res[2...]), aspectRatio: [ar[1]])
        #expect(alone.data == Array(both.data[(both.count / 2)...]))
        let error = #expect(throws: ModelError.self) { try model.forward(x, timesteps: [999, 20], caption: caption, captionMask: mask) }
        #expect(error?.code == .badInput && error?.message.contains("resolution") == true)
    }

    @Test func configDefaultsFollowTheClass() throws {
        let defaults = try JSONDecoder().decode(PixArtTransformer2DModel.Config.self, from: Data("{}".utf8))
        #expect(defaults.innerDim == 1152 && defaults.sampleSize == 128 && defaults.resolvedAdditionalConditions)
        #expect(defaults.resolvedInterpolationScale == 2 && defaults.resolvedOutChannels == 8 && defaults.captionChannels == nil)
        let sigma512 = try JSONDecoder().decode(PixArtTransformer2DModel.Config.self, from: Data(#"{"sample_size": 64, "interpolation_scale": null}"#.utf8))
        #expect(!sigma512.resolvedAdditionalConditions && sigma512.resolvedInterpolationScale == 1)
        var config = try ModelFixtures.config(PixArtTransformer2DModel.Config.self, "sana/pixart-sigma-transformer/config.json")
        config.normType = "ada_norm_zero"
        let store = try ModelFixtures.store("sana/pixart-sigma-transformer/diffusion_pytorch_model.safetensors")
        let error = #expect(throws: ModelError.self) { try PixArtTransformer2DModel(config: config, weights: store) }
        #expect(error?.code == .unsupportedConfig)
    }
}
