import Foundation
import Testing
import Tensor
@testable import Diffusion
import Text
import Weights

// Whole text-to-image pipelines against the stock diffusers 0.42.1 pipelines on the random-weight folders of
// Fixtures/sana/*-pipeline (tools/reference/make_sana_fixtures.py `build_pipelines`; Fixtures/README.md).

enum T2IFixtures {
    static func pipeline(_ name: String) throws -> TextToImagePipeline {
        try TextToImagePipeline(url: ModelFixtures.root.appendingPathComponent("sana/\(name)"))
    }

    /// (case, folder, prompts, negative, seeds, steps, guidance, height, width, binning)
    static let cases: [(String, String, [String], String, [Int64], Int, Double, Int, Int, Bool)] = [
        ("pixart-sigma-2prompts", "pixart-sigma-pipeline", ["a red circle", "Blue square ON green"], "", [1, 2], 6, 4.5, 32, 32, false),
        ("pixart-sigma-negative-32x48", "pixart-sigma-pipeline", ["a yellow star"], "blurry, dark", [3], 5, 3.0, 32, 48, false),
        // PixArt-α: max_sequence_length 120, resolution (32, 48) and aspect ratio 32/48 as transformer conditions
        ("pixart-alpha-negative-32x48", "pixart-alpha-pipeline", ["a red circle", "a yellow star"], "blurry", [12, 13], 4, 4.5, 32, 48, false),
        ("sana-2prompts", "sana-pipeline", ["a red circle", "Blue square ON green"], "", [4, 5], 6, 4.5, 32, 32, false),
        ("sana-negative-32x64", "sana-pipeline", ["a yellow star"], "blurry, dark", [6], 5, 3.0, 32, 64, false),
        ("sprint-2steps", "sprint-pipeline", ["a red circle", "Blue square ON green"], "", [7, 8], 2, 4.5, 32, 32, false),
        ("sprint-1step-32x64", "sprint-pipeline", ["a yellow star"], "", [9], 1, 4.5, 32, 64, false),
        // binning: generated at the 256 bin (304×208) / 512 bin (352×704), resized back
        ("pixart-sigma-binning-48x32", "pixart-sigma-pipeline", ["a green triangle"], "", [10], 3, 4.5, 48, 32, true),
        ("sana-binning-32x64", "sana-pipeline", ["a green triangle"], "", [11], 3, 4.5, 32, 64, true),
    ]
}

@Suite struct TextToImagePipelineTests {
    @Test(arguments: 0..<9)
    func imagesMatchDiffusersWithinOneLevel(index: Int) throws {
        let (name, folder, prompts, negative, seeds, steps, guidance, height, width, binning) = T2IFixtures.cases[index]
        let pipe = try T2IFixtures.pipeline(folder)
        let requests = zip(prompts, seeds).map { TextRequest(prompt: $0, negativePrompt: negative, guidanceScale: guidance, seed: $1) }
        let images = try pipe.generate(requests, steps: steps, height: height, width: width, binning: binning).map { try #require($0.image) }
        let file = try ModelFixtures.store("expected/\(name).safetensors")
        let expectedU8 = try ModelFixtures.tensor(file, "image_u8_hwc").data, expected = try ModelFixtures.tensor(file, "image").data
        let per = 3 * height * width
        for (i, image) in images.enumerated() {
            let ours = image.rgb.pixels.map(Float.init)
            let theirs = Array(expectedU8[(i * per)..<((i + 1) * per)])
            let levels = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            let float = zip(image.image, expected[(i * per)..<((i + 1) * per)]).map { abs($0 - $1) }.max() ?? .infinity
            #expect(levels <= 1, "\(name) image \(i): \(levels) levels apart (float max |Δ| \(float))")
            #expect(float < 2e-5, "\(name) image \(i): float max |Δ| \(float)")
        }
    }

    @Test func eachRequestOfABatchEqualsItsSoloRun() throws {
        let pipe = try T2IFixtures.pipeline("sana-pipeline")
        let requests = [TextRequest(prompt: "a red circle", guidanceScale: 4.5, seed: 4),
                        TextRequest(prompt: "Blue square ON green", negativePrompt: "dark", guidanceScale: 1, seed: 5)]
        let both = try pipe.generate(requests, steps: 3, height: 32, width: 32, binning: false)
        for (i, r) in requests.enumerated() {
            let alone = try pipe.generate([r], steps: 3, height: 32, width: 32, binning: false)
            #expect(alone[0].image?.image == both[i].image?.image && alone[0].image != nil)
        }
    }

    @Test func aDroppedRequestStopsAndTheOthersKeepTheirImage() throws {
        for folder in ["sana-pipeline", "sprint-pipeline"] {
            let pipe = try T2IFixtures.pipeline(folder)
            let steps = 2
            let requests = [TextRequest(prompt: "a red circle", guidanceScale: 4.5, seed: 4),
                            TextRequest(prompt: "Blue square ON green", guidanceScale: 4.5, seed: 5)]
            let solo = try pipe.generate([requests[1]], steps: steps, height: 32, width: 32, binning: false)
            var seen: [Int] = []
            let outcomes = try pipe.generate(requests, steps: steps, height: 32, width: 32, binning: false) { progress in
                seen.append(progress.step)
                #expect(progress.latents.keys.sorted() == progress.active)
                return progress.step == 1 ? [0] : []
            }
            #expect(seen == [1, 2])
            if case .cancelled(let after) = outcomes[0] { #expect(after == 1) } else { Issue.record("request 0 was not dropped") }
            #expect(outcomes[1].image?.image == solo[0].image?.image && outcomes[1].image != nil, "\(folder)")
        }
    }

    @Test func unsupportedFoldersAndRequestsAreRefusedWithOneLine() throws {
        let dit = ModelFixtures.root.appendingPathComponent("latent-dit")
        let error = #expect(throws: PipelineError.self) { try TextToImagePipeline(url: dit) }
        #expect(error?.code == .unsupportedComponent && error?.message.contains("DiTPipeline") == true)

        let tmp = try TempDir()
        let src = ModelFixtures.root.appendingPathComponent("sana/sana-pipeline")
        let copy = tmp.path("sana")
        try FileManager.default.copyItem(at: src, to: copy)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("tokenizer"))
        let noTokenizer = #expect(throws: PipelineError.self) { try TextToImagePipeline(url: copy) }
        #expect(noTokenizer?.message.hasPrefix("tokenizer:") == true)

        let pipe = try T2IFixtures.pipeline("sana-pipeline")
        let request = [TextRequest(prompt: "x", seed: 1)]
        #expect(throws: PipelineError.self) { try pipe.generate(request, steps: 2, height: 32, width: 48, binning: false) }
        // Sprint bins only at sample_size 32 (diffusers: "Invalid sample size"); this folder's is 8
        let sprint = try T2IFixtures.pipeline("sprint-pipeline")
        let noBins = #expect(throws: PipelineError.self) { try sprint.generate(request, steps: 1, height: 32, width: 32, binning: true) }
        #expect(noBins?.message.contains("sample_size 8") == true)
    }

    @Test func binsFollowClassifyHeightWidthBin() throws {
        #expect(ResolutionBins.classify(height: 48, width: 32, bins: ResolutionBins.bins256) == (304, 208))
        #expect(ResolutionBins.classify(height: 32, width: 64, bins: ResolutionBins.bins512) == (352, 704))
        #expect(ResolutionBins.classify(height: 1024, width: 1024, bins: ResolutionBins.bins1024) == (1024, 1024))
        #expect(ResolutionBins.bins256.count == 33 && ResolutionBins.bins2048.count == 40 && ResolutionBins.bins4096.count == 40)
        // first entries of diffusers' ASPECT_RATIO_512/1024/4096_BIN: '0.25': [256, 1024], [512, 2048], [2048, 8192]
        #expect(ResolutionBins.bins512[0] == ResolutionBin(ratio: 0.25, height: 256, width: 1024))
        #expect(ResolutionBins.bins1024[2] == ResolutionBin(ratio: 0.32, height: 576, width: 1792))
        #expect(ResolutionBins.bins4096[1] == ResolutionBin(ratio: 0.26, height: 2048, width: 7936))
        #expect(try T2IFixtures.pipeline("pixart-sigma-pipeline").resolutionBins() == ResolutionBins.bins256)
    }
}

@Suite struct PipelineRegistryTests {
    @Test func classNameDecidesThePipeline() throws {
        let root = ModelFixtures.root
        guard case .classConditional(let dit) = try LoadedPipeline.load(root.appendingPathComponent("latent-dit")) else {
            Issue.record("latent-dit is not class-conditional"); return
        }
        #expect(dit.classCount == 1000)
        for (folder, family) in [("pixart-sigma-pipeline", TextToImagePipeline.Family.pixArtSigma), ("pixart-alpha-pipeline", .pixArtAlpha),
                                 ("sana-pipeline", .sana), ("sprint-pipeline", .sanaSprint)] {
            let loaded = try LoadedPipeline.load(root.appendingPathComponent("sana/\(folder)"))
            guard case .textToImage(let pipe) = loaded else { Issue.record("\(folder) is not text-to-image"); continue }
            #expect(pipe.family == family && loaded.readsText)
        }
        #expect(LoadedPipeline.classNames == ["DiTPipeline", "PixArtSigmaPipeline", "PixArtAlphaPipeline", "SanaPipeline", "SanaSprintPipeline"])
    }

    @Test func anUnknownClassIsRefusedWithOneLine() throws {
        let tmp = try TempDir()
        let copy = tmp.path("sd")
        try FileManager.default.copyItem(at: ModelFixtures.root.appendingPathComponent("latent-dit"), to: copy)
        let index = copy.appendingPathComponent("model_index.json")
        var text = try String(contentsOf: index, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"DiTPipeline\"", with: "\"StableDiffusionPipeline\"")
        try text.write(to: index, atomically: true, encoding: .utf8)
        let error = #expect(throws: PipelineError.self) { try LoadedPipeline.load(copy) }
        #expect(error?.code == .unsupportedComponent && error?.message.contains("StableDiffusionPipeline is not supported") == true)
        #expect(error?.message.contains("\n") == false)
    }
}

@Suite struct PromptCacheInPipelineTests {
    @Test func cachedCaptionsGiveTheSameImageWithoutEncodingAgain() throws {
        let cache = PromptCache(megabytes: 16)
        let url = ModelFixtures.root.appendingPathComponent("sana/pixart-sigma-pipeline")
        let cached = try TextToImagePipeline(url: url, promptCache: cache), plain = try TextToImagePipeline(url: url)
        let requests = [TextRequest(prompt: "a red circle", negativePrompt: "dark", guidanceScale: 4.5, seed: 1)]
        let first = try cached.generate(requests, steps: 2, height: 32, width: 32, binning: false)
        #expect(cache.stats.misses == 2 && cache.stats.hits == 0 && cache.stats.entries == 2)   // positive and negative
        let second = try cached.generate(requests, steps: 2, height: 32, width: 32, binning: false)
        #expect(cache.stats.hits == 2 && cache.stats.misses == 2)
        let uncached = try plain.generate(requests, steps: 2, height: 32, width: 32, binning: false)
        #expect(first[0].image?.image == second[0].image?.image && second[0].image?.image == uncached[0].image?.image)
    }
}

@Suite struct DCAEPreviewTests {
    @Test func dcaeLatentsGetAFittedColourMapAndSDLatentsKeepTheDefault() throws {
        let sana = try T2IFixtures.pipeline("sana-pipeline")
        let map = try #require(sana.previewMap)
        #expect(map.count == 9 && map.allSatisfy { $0.count == 3 && $0.allSatisfy(\.isFinite) })   // 8 channels + bias
        #expect(try T2IFixtures.pipeline("pixart-sigma-pipeline").previewMap == nil)
        var previews: [RGBImage] = []
        _ = try sana.generate([TextRequest(prompt: "a red circle", seed: 4)], steps: 1, height: 32, width: 64, binning: false) { p in
            if let img = p.preview(0) { previews.append(img) }
            return []
        }
        let img = try #require(previews.first)
        #expect(img.width == 16 && img.height == 8)                            // latent-sized (×4 DC-AE)
        let px: [UInt8] = img.pixels
        var grey = true
        for i in stride(from: 0, to: px.count, by: 3) where px[i] != px[i + 1] || px[i + 1] != px[i + 2] { grey = false }
        #expect(!grey, "a fitted map gives colour, not channel 0 as grey")
    }
}
