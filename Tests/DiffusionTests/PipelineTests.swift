import Foundation
import Testing
import Tensor
@testable import Diffusion

/// Copies a fixture pipeline folder into a temp dir (to damage it).
func copyFixtureFolder(_ name: String, into dir: TempDir) throws -> URL {
    let src = try #require(PipeFixtures.url(name))
    let dst = dir.path(name)
    try FileManager.default.copyItem(at: src, to: dst)
    return dst
}

@Suite struct PipelineFolderTests {
    @Test func latentFolderComponentsLabelsAndScheduler() throws {
        let f = try PipelineFolder(url: try #require(PipeFixtures.url("latent-dit")))
        #expect(f.className == "DiTPipeline")
        #expect(f.transformer.className == "DiTTransformer2DModel" && f.vae?.className == "AutoencoderKL")
        // "0": "red circle, red disc" → both names are class 0 (pipeline_dit.py:68-74)
        #expect(f.labels["red circle"] == 0 && f.labels["red disc"] == 0 && f.labels["white ring"] == 4)
        #expect(f.classID(for: "blue square") == 1 && f.classID(for: "3") == 3 && f.classID(for: "nope") == nil)
        #expect(f.scheduler.defaultSampler == .ddim)
        #expect(f.scheduler.values["timestep_spacing"] == .string("leading"))
    }

    @Test func pixelFolderHasNoVAE() throws {
        let f = try PipelineFolder(url: try #require(PipeFixtures.url("pixel-dit")))
        #expect(f.vae == nil && f.components["vae"] == .some(nil))
        #expect(f.scheduler.defaultSampler == .flowEuler)
    }

    @Test func legacyTransformer2DModelIsRemappedByNormType() throws {
        let dir = try TempDir()
        let root = try copyFixtureFolder("latent-dit", into: dir)
        let cfgURL = root.appendingPathComponent("transformer/config.json")
        var text = try String(contentsOf: cfgURL, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"DiTTransformer2DModel\"", with: "\"Transformer2DModel\"")
        try text.write(to: cfgURL, atomically: true, encoding: .utf8)
        #expect(try PipelineFolder(url: root).transformer.className == "DiTTransformer2DModel")

        try text.replacingOccurrences(of: "ada_norm_zero", with: "layer_norm").write(to: cfgURL, atomically: true, encoding: .utf8)
        #expect(throws: PipelineError.self) { try PipelineFolder(url: root) }
    }

    @Test func missingKeysTakeClassDefaults() throws {
        let dir = try TempDir()
        let root = try copyFixtureFolder("latent-dit", into: dir)
        let cfgURL = root.appendingPathComponent("transformer/config.json")
        // Drop norm_eps and activation_fn: the DiT class defaults apply.
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: cfgURL)) as? [String: Any])
        obj["norm_eps"] = nil
        obj["activation_fn"] = nil
        try JSONSerialization.data(withJSONObject: obj).write(to: cfgURL)
        let c = try PipelineFolder(url: root).transformer.decodeConfig(DiTTransformer2DModel.Config.self)
        #expect(c.normEps == 1e-5 && c.activationFn == "gelu-approximate" && c.numLayers == 2)
    }

    func expectOneLineError(_ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(!text.isEmpty && !text.contains("\n"), "\(text)")
        }
    }

    @Test func damagedFoldersGiveOneLineErrors() throws {
        let dir = try TempDir()
        let root = try copyFixtureFolder("latent-dit", into: dir)
        let weights = root.appendingPathComponent("vae/diffusion_pytorch_model.safetensors")
        let full = try Data(contentsOf: weights)
        try full.prefix(full.count - 100).write(to: weights)
        expectOneLineError { _ = try DiffusionPipeline.load(root) }

        try Data("{not json".utf8).write(to: root.appendingPathComponent("model_index.json"))
        expectOneLineError { _ = try DiffusionPipeline.load(root) }

        try FileManager.default.removeItem(at: root.appendingPathComponent("model_index.json"))
        expectOneLineError { _ = try DiffusionPipeline.load(root) }
        expectOneLineError { _ = try DiffusionPipeline.load(dir.path("nowhere")) }
    }

    @Test func missingWeightsAndCorruptConfigAreReported() throws {
        let dir = try TempDir()
        let root = try copyFixtureFolder("pixel-dit", into: dir)
        try Data("[1,2]".utf8).write(to: root.appendingPathComponent("transformer/config.json"))
        #expect(throws: PipelineError.self) { try DiffusionPipeline.load(root) }
        let dir2 = try TempDir()
        let root2 = try copyFixtureFolder("latent-dit", into: dir2)
        try FileManager.default.removeItem(at: root2.appendingPathComponent("transformer/diffusion_pytorch_model.safetensors"))
        #expect(throws: PipelineError(.missingWeights, "transformer/: no diffusion_pytorch_model.safetensors (or sharded index) found")) {
            try DiffusionPipeline.load(root2)
        }
    }
}


@Suite struct PreviewTests {
    @Test func latentPreviewIsLatentSizedAndPixelPreviewIsDownscaled() {
        let latent = [Float](repeating: 0, count: 4 * 8 * 12)
        let p = Preview.image(sample: latent, channels: 4, height: 8, width: 12, latent: true)
        #expect(p.width == 12 && p.height == 8 && p.pixels.allSatisfy { $0 == 128 })   // 0 → 0.5 → round(127.5) = 128
        var rgb = [Float](repeating: -1, count: 3 * 256 * 128)
        for i in 0..<(256 * 128) { rgb[i] = 1 }                                        // red plane at +1
        let q = Preview.image(sample: rgb, channels: 3, height: 256, width: 128, latent: false, maxSide: 64)
        #expect(q.width == 32 && q.height == 64)
        #expect(q.pixels[0] == 255 && q.pixels[1] == 0 && q.pixels[2] == 0)
    }

    @Test func quantisationRoundsHalfToEvenLikeNumpy() {
        // 0.5·255 = 127.5 → 128 (even); NaN → 0; clamp outside [0, 1]
        let img = ImageConversion.rgb8(chw: [0.5, Float.nan, 2], height: 1, width: 1)
        #expect(img.pixels == [128, 0, 255])
        #expect(ImageConversion.unitRange([-3, 0, 3]) == [0, 0.5, 1])
    }
}
