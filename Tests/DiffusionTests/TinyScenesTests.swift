import Foundation
import Testing
@testable import Diffusion

/// The shipped text-to-image model, models/tiny-scenes, through the Swift SanaPipeline as its darkroom.json says to
/// call it (flow Euler, no binning, no complex_human_instruction): the images diffusers gives for the same prompt and
/// seed (tools/reference/make_tiny_scenes_reference.py) within 2/255 (issue 12's bar).
@Suite struct TinyScenesTests {
    static let cases: [(prompt: String, width: Int, height: Int, seed: Int64)] = [
        ("a red circle above a blue square", 64, 64, 0),
        ("blue square on the right, red triangle on the left, grey background", 64, 32, 0),
        ("a purple square above a white ring", 32, 64, 7),
    ]

    @Test func theFolderSaysHowItIsCalled() throws {
        let pipe = try Self.pipeline()
        #expect(pipe.callDefaults == CallDefaults(binning: false, complexHumanInstruction: [], maxSequenceLength: 300))
        #expect(pipe.schedulerConfig.className == "FlowMatchEulerDiscreteScheduler")
    }

    @Test(arguments: 0..<3)
    func imagesMatchDiffusersWithinTwoLevels(index: Int) throws {
        let c = Self.cases[index]
        let pipe = try Self.pipeline()
        let request = TextRequest(prompt: c.prompt, negativePrompt: "", guidanceScale: 4.5, seed: c.seed)
        let image = try #require(try pipe.generate([request], steps: 20, height: c.height, width: c.width)[0].image)
        let file = try ModelFixtures.store("expected/tiny-scenes.safetensors")
        let expected = try ModelFixtures.tensor(file, "image_u8_hwc_\(index)").data
        let ours = image.rgb.pixels.map(Float.init)
        #expect(ours.count == expected.count)
        let levels = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(levels <= 2, "\(c.prompt): \(levels) levels from diffusers")
    }

    static func pipeline() throws -> TextToImagePipeline {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try TextToImagePipeline(url: root.appendingPathComponent("models/tiny-scenes"))
    }
}
