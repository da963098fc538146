import Foundation
import Testing
import Tensor
@testable import Diffusion

/// Whole-image references of Fixtures/README.md ("Whole-image cases"): diffusers 0.42.1 on torch CPU.
@Suite(.serialized) struct SamplerFixtureTests {
    struct Case {
        let name: String, folder: String, sampler: SamplerName
        let labels: [Int], seeds: [Int64], guidance: Double, steps: Int
        let latentH: Int, latentW: Int, imageH: Int, imageW: Int
    }

    func loadCase(_ name: String) throws -> Case {
        let c = try #require(try PipeFixtures.manifestCase(name))
        func ints(_ k: String) -> [Int] { c[k]?.arrayValue?.compactMap(\.intValue) ?? [] }
        return Case(name: name, folder: try #require(c["pipeline"]?.stringValue),
                    sampler: try #require(SamplerName(rawValue: c["sampler"]?.stringValue ?? "")),
                    labels: ints("labels"), seeds: ints("seeds").map(Int64.init),
                    guidance: try #require(c["guidance_scale"]?.doubleValue),
                    steps: try #require(c["num_inference_steps"]?.intValue),
                    latentH: try #require(c["latent_height"]?.intValue), latentW: try #require(c["latent_width"]?.intValue),
                    imageH: try #require(c["image_height"]?.intValue), imageW: try #require(c["image_width"]?.intValue))
    }

    /// Runs one case batched, checks initial latents bit-exact, images within 2e-4, PNG bytes within 1.
    func run(_ name: String) throws {
        let c = try loadCase(name)
        let ref = try #require(try PipeFixtures.file("expected/\(name).safetensors"))
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url(c.folder)))
        let requests = zip(c.labels, c.seeds).map { SampleRequest(label: $0, guidanceScale: c.guidance, seed: $1) }
        var seenSteps: [Int] = []
        let outcomes = try pipe.generate(requests: requests, steps: c.steps, sampler: c.sampler,
                                         height: c.imageH, width: c.imageW) { p in
            seenSteps.append(p.step)
            #expect(p.preview(0) != nil)
            return []
        }
        #expect(seenSteps == Array(1...c.steps))
        let images = outcomes.compactMap(\.image)
        try #require(images.count == requests.count)

        let init0 = try PipeFixtures.floats(ref, "latents_init")
        #expect(images.flatMap(\.initialNoise).map(\.bitPattern) == init0.map(\.bitPattern))

        let refImage = try PipeFixtures.floats(ref, "image")
        let ours = images.flatMap(\.image)
        let diff = PipeFixtures.maxAbsDiff(ours, refImage)
        #expect(diff <= 2e-4, "\(name): max |Δimage| = \(diff)")

        let refU8 = try PipeFixtures.floats(ref, "image_u8_hwc")
        let oursU8 = images.flatMap(\.rgb.pixels).map(Float.init)
        #expect(PipeFixtures.maxAbsDiff(oursU8, refU8) <= 1)
        #expect(images.allSatisfy { $0.rgb.width == c.imageW && $0.rgb.height == c.imageH })

        let finalRef = try PipeFixtures.floats(ref, "latents_final")
        let finalDiff = PipeFixtures.maxAbsDiff(images.flatMap(\.latents), finalRef) / max(PipeFixtures.maxAbs(finalRef), 1)
        #expect(finalDiff <= 1e-4, "\(name): relative |Δlatents_final| = \(finalDiff)")
    }

    @Test func latentDDIMWithGuidance() throws { try run("latent-ddim-cfg4") }
    @Test func latentDPMSolverFromDDIMConfig() throws { try run("latent-dpmpp2m-cfg2.5") }
    @Test func latentDDIMWithoutGuidanceNonSquare() throws { try run("latent-ddim-nocfg-8x12") }
    @Test func pixelFlowEulerWithGuidance() throws { try run("pixel-flow-cfg3") }
    @Test func pixelFlowEulerNonSquare() throws { try run("pixel-flow-cfg3-16x24") }

    @Test func eachRequestGetsTheImageItWouldGetAloneAndDropsLeaveOthersRunning() throws {
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")))
        let a = SampleRequest(label: 1, guidanceScale: 4, seed: 1)
        let b = SampleRequest(label: 3, guidanceScale: 1, seed: 2)     // no guidance: no null row
        let c = SampleRequest(label: 2, guidanceScale: 2.5, seed: 9)
        let batch = try pipe.generate(requests: [a, b, c], steps: 5, sampler: .ddim) { p in p.step == 2 ? [2] : [] }
        guard case .cancelled(let after) = batch[2] else { Issue.record("request 2 should be cancelled"); return }
        #expect(after == 2)
        for (i, r) in [a, b].enumerated() {
            let solo = try pipe.generate(requests: [r], steps: 5, sampler: .ddim)
            let d = PipeFixtures.maxAbsDiff(try #require(batch[i].image).image, try #require(solo[0].image).image)
            #expect(d <= 1e-5, "request \(i): batched vs solo \(d)")
        }
    }

    /// The shipped model at every size it serves: each request of a batch of 1...8 (different labels and seeds,
    /// guidance on and off, the same seed twice) gets exactly the image it gets alone, bit for bit.
    @Test(arguments: [(32, 32), (64, 64), (64, 32)])
    func shippedModelBatchesGiveEachRequestItsSoloImageExactly(width: Int, height: Int) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pipe = try DiffusionPipeline.load(root.appendingPathComponent("models/tiny-shapes"))
        let requests = (0..<8).map { i in
            SampleRequest(label: (i * 5) % 24, guidanceScale: i == 3 ? 1 : 4, seed: i == 5 ? 1 : Int64(100 + i))
        }
        let solo = try requests.map { try #require(try pipe.generate(requests: [$0], steps: 2, sampler: .ddim, height: height, width: width)[0].image).image }
        for n in 1...8 {
            let batch = try pipe.generate(requests: Array(requests.prefix(n)), steps: 2, sampler: .ddim, height: height, width: width)
            for i in 0..<n {
                let got = try #require(batch[i].image).image
                let same = got == solo[i]
                #expect(same, "\(width)x\(height), batch of \(n), request \(i): max diff \(PipeFixtures.maxAbsDiff(got, solo[i]))")
            }
        }
    }

    @Test func givenNoiseReproducesTheSeededImage() throws {
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url("pixel-dit")))
        let seeded = try #require(try pipe.generate(requests: [SampleRequest(label: 0, guidanceScale: 3, seed: 11)], steps: 4)[0].image)
        let given = try #require(try pipe.generate(requests: [SampleRequest(label: 0, guidanceScale: 3, noise: .latents(seeded.initialNoise))], steps: 4)[0].image)
        #expect(given.rgb == seeded.rgb)
        #expect(throws: PipelineError.self) {
            try pipe.generate(requests: [SampleRequest(label: 0, noise: .latents([1, 2, 3]))], steps: 4)
        }
    }

    @Test func badSizesAndLabelsAreRefused() throws {
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")))
        #expect(throws: PipelineError.self) { try pipe.generate(requests: [SampleRequest(label: 0, seed: 1)], steps: 2, height: 30, width: 32) }
        #expect(throws: PipelineError.self) { try pipe.generate(requests: [SampleRequest(label: 1001, seed: 1)], steps: 2) }
    }

    @Test func cachedTablesGiveTheSameImage() throws {
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")))
        let tables = try pipe.schedulerTables(.dpmpp2m, steps: 6)
        let decoded = try JSONDecoder().decode(SchedulerTables.self, from: JSONEncoder().encode(tables))
        let r = [SampleRequest(label: 4, guidanceScale: 2, seed: 5)]
        let a = try #require(try pipe.generate(requests: r, steps: 6, sampler: .dpmpp2m)[0].image)
        let b = try #require(try pipe.generate(requests: r, steps: 6, sampler: .dpmpp2m, tables: decoded)[0].image)
        #expect(a.image == b.image)
    }
}
