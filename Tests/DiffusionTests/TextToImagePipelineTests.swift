import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

// Whole text-to-image pipelines against the stock diffusers 0.42.1 pipelines on the random-weight folders of
// Fixtures/sana/*-pipeline (tools/reference/make_sana_fixtures.py `build_pipelines`; Fixtures/README.md).

enum T2IFixtures {
    static func pipeline(_ name: String) throws -> TextToImagePipeline {
        try TextToImagePipeline(url: ModelFixtures.root.appendingPathComponent("sana/\(name)"))
    }

    /// (case, folder, prompts, negative, seeds, steps, guidance, height, width)
    static let cases: [(String, String, [String], String, [Int64], Int, Double, Int, Int)] = [
        ("pixart-sigma-2prompts", "pixart-sigma-pipeline", ["a red circle", "Blue square ON green"], "", [1, 2], 6, 4.5, 32, 32),
        ("pixart-sigma-negative-32x48", "pixart-sigma-pipeline", ["a yellow star"], "blurry, dark", [3], 5, 3.0, 32, 48),
        ("sana-2prompts", "sana-pipeline", ["a red circle", "Blue square ON green"], "", [4, 5], 6, 4.5, 32, 32),
        ("sana-negative-32x64", "sana-pipeline", ["a yellow star"], "blurry, dark", [6], 5, 3.0, 32, 64),
        ("sprint-2steps", "sprint-pipeline", ["a red circle", "Blue square ON green"], "", [7, 8], 2, 4.5, 32, 32),
        ("sprint-1step-32x64", "sprint-pipeline", ["a yellow star"], "", [9], 1, 4.5, 32, 64),
    ]
}

@Suite struct TextToImagePipelineTests {
    @Test(arguments: 0..<6)
    func imagesMatchDiffusersWithinOneLevel(index: Int) throws {
        let (name, folder, prompts, negative, seeds, steps, guidance, height, width) = T2IFixtures.cases[index]
        let pipe = try T2IFixtures.pipeline(folder)
        let requests = zip(prompts, seeds).map { TextRequest(prompt: $0, negativePrompt: negative, guidanceScale: guidance, seed: $1) }
        let images = try pipe.generate(requests, steps: steps, height: height, width: width, binning: false)
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
            #expect(alone[0].image == both[i].image)
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
        #expect(throws: PipelineError.self) { try pipe.generate(request, steps: 2, height: 32, width: 32, binning: true) }
        #expect(throws: PipelineError.self) { try pipe.generate(request, steps: 2, height: 32, width: 48, binning: false) }
    }
}
