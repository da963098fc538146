// Step caching (FirstBlockCache.swift) against diffusers 0.42.1's FirstBlockCache on the stock DiTPipeline
// (Fixtures/cache-manifest.json, tools/reference/make_cache_fixtures.py), and the batching rules: an image's
// decisions and pixels do not depend on its batch-mates or their thresholds; threshold 0 is today's path.
import Foundation
import Testing
import Tensor
import Weights
@testable import Diffusion

@Suite(.serialized) struct StepCacheTests {
    struct Reference {
        let requests: [SampleRequest], skipped: [Int], changes: [[Double]], steps: Int, threshold: Double
    }

    static func pipeline() throws -> DiffusionPipeline {
        try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")))
    }

    static func reference() throws -> Reference {
        let u = try #require(PipeFixtures.url("cache-manifest.json"))
        let m = try #require(try JSONValue.parse(try Data(contentsOf: u)).objectValue)
        let threshold = try #require(m["threshold"]?.doubleValue)
        let listed = m["images"]?.arrayValue?.compactMap { $0.objectValue }
        let images = try #require(listed)
        let requests = try images.map { i in
            SampleRequest(label: try #require(i["label"]?.intValue), guidanceScale: try #require(i["guidance_scale"]?.doubleValue),
                          seed: Int64(try #require(i["seed"]?.intValue)), cacheThreshold: threshold)
        }
        return Reference(requests: requests, skipped: images.compactMap { $0["skipped_steps"]?.intValue },
                         changes: images.map { $0["changes"]?.arrayValue?.compactMap(\.doubleValue) ?? [] },
                         steps: try #require(m["num_inference_steps"]?.intValue), threshold: threshold)
    }

    static func images(_ pipe: DiffusionPipeline, _ requests: [SampleRequest], steps: Int) throws -> [GeneratedImage] {
        try pipe.generate(requests: requests, steps: steps, sampler: .ddim).map { try #require($0.image) }
    }

    @Test func batchedImagesSkipTheStepsDiffusersSkipsAndMatchItsImages() throws {
        let ref = try Self.reference(), pipe = try Self.pipeline()
        let file = try #require(try PipeFixtures.file("expected/latent-ddim-fbc.safetensors"))
        let images = try Self.images(pipe, ref.requests, steps: ref.steps)       // all three in one batch
        let plain = try Self.images(pipe, ref.requests.map { var r = $0; r.cacheThreshold = 0; return r }, steps: ref.steps)
        let refImage = try PipeFixtures.floats(file, "image"), refLatents = try PipeFixtures.floats(file, "latents_final")
        let uncachedLatents = try PipeFixtures.floats(file, "latents_final_uncached")
        let perImage = refImage.count / images.count, perLatent = refLatents.count / images.count
        for (i, image) in images.enumerated() {
            #expect(ref.skipped[i] > 0)
            #expect(image.cachedSteps == ref.skipped[i], "image \(i): \(image.cachedSteps) steps skipped, diffusers \(ref.skipped[i])")
            #expect(plain[i].cachedSteps == 0)
            // The same measured changes step by step (after a skipped step both compare with the older full step).
            try #require(image.cacheChanges.count == ref.changes[i].count)
            for (ours, theirs) in zip(image.cacheChanges, ref.changes[i]) {
                #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "image \(i): change \(ours) vs diffusers \(theirs)")
            }
            let d = PipeFixtures.maxAbsDiff(image.image, Array(refImage[(i * perImage)..<((i + 1) * perImage)]))
            #expect(d <= 2e-4, "image \(i): max |Δimage| vs diffusers FirstBlockCache \(d)")
            let expected = Array(refLatents[(i * perLatent)..<((i + 1) * perLatent)])
            let uncached = Array(uncachedLatents[(i * perLatent)..<((i + 1) * perLatent)])
            let scale = max(PipeFixtures.maxAbs(expected), 1)
            let toCached = PipeFixtures.maxAbsDiff(image.latents, expected) / scale
            let toUncached = PipeFixtures.maxAbsDiff(image.latents, uncached) / scale
            // The cache moves the final latents by 7e-5…1e-4 (relative) on this model; ours stay far closer to
            // diffusers' cached latents than to its uncached ones.
            #expect(toCached <= 1e-5 && toCached * 4 < toUncached,
                    "image \(i): relative |Δlatents| \(toCached) to the cached reference, \(toUncached) to the uncached one")
        }
    }

    @Test func anImageGetsItsSoloPixelsWhateverItsBatchMatesThresholds() throws {
        let ref = try Self.reference(), pipe = try Self.pipeline()
        var mixed = ref.requests
        mixed[0].cacheThreshold = 0                 // off, beside two cached images
        mixed[2].cacheThreshold = 0.45              // another threshold
        let batch = try Self.images(pipe, mixed, steps: ref.steps)
        for (i, r) in mixed.enumerated() {
            let solo = try Self.images(pipe, [r], steps: ref.steps)[0]
            #expect(batch[i].image == solo.image, "image \(i) batched ≠ solo: \(PipeFixtures.maxAbsDiff(batch[i].image, solo.image))")
            #expect(batch[i].cachedSteps == solo.cachedSteps && batch[i].cacheChanges == solo.cacheChanges)
        }
        #expect(batch[0].cachedSteps == 0)
        #expect(batch[2].cachedSteps > ref.skipped[2], "a higher threshold skips more")
    }

    @Test func thresholdZeroAndAThresholdNothingMeetsGiveTodaysImagesBitForBit() throws {
        let ref = try Self.reference(), pipe = try Self.pipeline()
        let off = ref.requests.map { var r = $0; r.cacheThreshold = 0; return r }
        let tiny = ref.requests.map { var r = $0; r.cacheThreshold = 1e-9; return r }   // every step runs every block
        let today = try Self.images(pipe, ref.requests.map { SampleRequest(label: $0.label, guidanceScale: $0.guidanceScale, noise: $0.noise) },
                                    steps: ref.steps)
        let a = try Self.images(pipe, off, steps: ref.steps), b = try Self.images(pipe, tiny, steps: ref.steps)
        for i in today.indices {
            #expect(a[i].image == today[i].image && a[i].latents == today[i].latents)
            #expect(b[i].cachedSteps == 0 && b[i].cacheChanges.count == ref.steps - 1)
            #expect(b[i].latents == today[i].latents, "the cached path with no skip must be today's path bit for bit")
        }
    }

    @Test(arguments: [-0.1, Double.nan, Double.infinity])
    func aBadThresholdIsAClearError(threshold: Double) throws {
        let pipe = try Self.pipeline()
        #expect {
            _ = try pipe.generate(requests: [SampleRequest(label: 1, seed: 1, cacheThreshold: threshold)], steps: 2, sampler: .ddim)
        } throws: { error in
            (error as? PipelineError)?.message.contains("cache threshold") == true
        }
    }
}
