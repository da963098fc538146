// Batched = solo for the AutoencoderKL decode (issue 13, "Batched ≠ solo"): an image must not depend on what
// else is in its batch, bit for bit, at batch sizes 1...8. The DiT side is SamplerFixtureTests'
// shippedModelBatchesGiveEachRequestItsSoloImageExactly; here the latent fixture pipeline (DiT + AutoencoderKL,
// Fixtures/latent-dit) at 32x32, 64x64 and 64x32 — the sizes tiny-shapes serves — and the decoder alone.
import Foundation
import Tensor
import Testing
@testable import Diffusion

struct BatchInvarianceTests {
    static func latentPipeline() throws -> DiffusionPipeline {
        try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")))
    }

    /// Deterministic latents in a VAE's range, different per item.
    static func latents(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> [[Float]] {
        (0..<n).map { item in
            var state = UInt64(0x9E37_79B9_7F4A_7C15) &* UInt64(item + 1)
            return (0..<(c * h * w)).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 400_000   // [-2.5, 2.5]
            }
        }
    }

    @Test(arguments: [(32, 32), (64, 64), (64, 32)])
    func autoencoderKLDecodeOfEachItemIsTheSameAloneOrInABatchOfUpToEight(width: Int, height: Int) throws {
        let decoder = try #require(Self.latentPipeline().decoder as? VAEDecoder)
        let s = decoder.scale, c = decoder.vae.config.latentChannels, h = height / s, w = width / s
        let items = Self.latents(8, c, h, w)
        // z: [1, c, h, w] -> [1, 3, H, W]
        let solo = try items.map { try decoder.decode(Tensor(shape: [1, c, h, w], data: $0)).data }
        for n in 1...8 {
            let batch = try decoder.decode(Tensor(shape: [n, c, h, w], data: Array(items.prefix(n).joined())))
            let per = 3 * height * width
            #expect(batch.shape == [n, 3, height, width])
            for i in 0..<n {
                let got = Array(batch.data[(i * per)..<((i + 1) * per)])
                #expect(got == solo[i], "\(width)x\(height), batch of \(n), item \(i): max diff \(PipeFixtures.maxAbsDiff(got, solo[i]))")
            }
        }
    }

    /// The same with the decoder's weights held as bf16 (3×3 convolutions through oneDNN's bf16 kernel on CPUs with
    /// bf16 dot products, widened per call elsewhere): batch 1...4 against solo, bit for bit.
    @Test func bf16AutoencoderKLDecodeOfEachItemIsTheSameAloneOrInABatch() throws {
        let pipe = try DiffusionPipeline.load(try #require(PipeFixtures.url("latent-dit")), precision: .bf16)
        let decoder = try #require(pipe.decoder as? VAEDecoder)
        let s = decoder.scale, c = decoder.vae.config.latentChannels, h = 64 / s, w = 64 / s
        let items = Self.latents(4, c, h, w)
        let solo = try items.map { try decoder.decode(Tensor(shape: [1, c, h, w], data: $0)).data }
        for n in 1...4 {
            let batch = try decoder.decode(Tensor(shape: [n, c, h, w], data: Array(items.prefix(n).joined())))
            let per = 3 * 64 * 64
            for i in 0..<n {
                #expect(Array(batch.data[(i * per)..<((i + 1) * per)]) == solo[i], "bf16, batch of \(n), item \(i)")
            }
        }
    }

    /// DiT + AutoencoderKL, whole images: different labels and seeds, guidance on and off, the same seed twice.
    @Test(arguments: [(32, 32), (64, 64), (64, 32)])
    func latentPipelineBatchesGiveEachRequestItsSoloImageExactly(width: Int, height: Int) throws {
        let pipe = try Self.latentPipeline()
        let requests = (0..<8).map { i in
            SampleRequest(label: i % 5, guidanceScale: i == 3 ? 1 : 4, seed: i == 5 ? 1 : Int64(200 + i))
        }
        let solo = try requests.map {
            try #require(try pipe.generate(requests: [$0], steps: 2, sampler: .ddim, height: height, width: width)[0].image).rgb
        }
        for n in 1...8 {
            let batch = try pipe.generate(requests: Array(requests.prefix(n)), steps: 2, sampler: .ddim, height: height, width: width)
            for i in 0..<n {
                let got = try #require(batch[i].image).rgb
                #expect(got == solo[i], "\(width)x\(height), batch of \(n), request \(i)")
            }
        }
    }
}
