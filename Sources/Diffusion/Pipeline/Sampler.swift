// The DiT sampling loop, batched across requests. Port of diffusers 0.42.1 pipelines/dit/pipeline_dit.py:101-251
// (DiTPipeline.__call__; docs/engine.md §4.2), with the differences the fixtures document
// (Tests/DiffusionTests/Fixtures/README.md): latent size (H, W) per call, null class = the model's
// num_embeds_ada_norm, scale_model_input skipped for FlowMatch (identity), pixel-space pipelines decode to the
// sample itself.
//
// Batching: every request has its own label, guidance scale, initial noise and scheduler state. One forward pass
// per step holds the conditional rows of all live requests, then the unconditional (null-class) rows of those
// with guidance > 1. Per row the maths is DiTPipeline's, so a request gets the image it would get alone.
import Core
import Foundation
import Tensor

/// Where a request's initial noise comes from.
public enum InitialNoise: Sendable, Equatable {
    /// `torch.randn((1, C, H, W), generator=torch.Generator().manual_seed(seed))`.
    case seed(Int64)
    /// Given latents `[C, H, W]` (e.g. re-using an earlier request's noise).
    case latents([Float])
}

/// One image to generate.
public struct SampleRequest: Sendable, Equatable {
    public var label: Int
    /// Classifier-free guidance scale; guidance is on when > 1 (DiT default 4.0).
    public var guidanceScale: Double
    public var noise: InitialNoise
    /// Step caching (FirstBlockCache.swift): skip the blocks after the first when block 0's residual changed
    /// relatively by no more than this since the last full step; 0 = off (every step runs every block).
    public var cacheThreshold: Double

    public init(label: Int, guidanceScale: Double = 4.0, noise: InitialNoise, cacheThreshold: Double = 0) {
        self.label = label
        self.guidanceScale = guidanceScale
        self.noise = noise
        self.cacheThreshold = cacheThreshold
    }

    public init(label: Int, guidanceScale: Double = 4.0, seed: Int64, cacheThreshold: Double = 0) {
        self.init(label: label, guidanceScale: guidanceScale, noise: .seed(seed), cacheThreshold: cacheThreshold)
    }
}

/// Which output channels guidance mixes.
public enum GuidanceChannels: Sendable, Equatable {
    /// diffusers: all `in_channels` ε channels (DiTPipeline, `[:latent_channels]`).
    case latent
    /// The original facebookresearch/DiT `forward_with_cfg`: only the first n channels.
    case first(Int)
}

/// What the per-step callback sees.
public struct SamplerProgress: Sendable {
    /// Steps finished (1...steps).
    public let step: Int
    public let steps: Int
    /// The timestep just used.
    public let timestep: Float
    /// Indices (into `requests`) still running.
    public let active: [Int]
    /// Current sample `[C, H, W]` of each active request, by request index.
    public let latents: [Int: [Float]]
    public let channels: Int
    public let height: Int
    public let width: Int
    /// Whether samples are VAE latents (false: pixel space).
    public let isLatent: Bool
    /// The model's own latent → RGB map for previews (`Preview.image`), nil for the default.
    public var rgbMap: [[Float]]? = nil

    /// A small RGB preview of request `index`'s current sample.
    public func preview(_ index: Int, maxSide: Int = 64) -> RGBImage? {
        guard let s = latents[index] else { return nil }
        return Preview.image(sample: s, channels: channels, height: height, width: width, latent: isLatent, maxSide: maxSide,
                             map: rgbMap)
    }
}

/// A finished request.
public struct GeneratedImage: Sendable {
    /// The quantised image (what goes into the PNG).
    public let rgb: RGBImage
    /// `[3, H, W]` in [0, 1] before quantisation.
    public let image: [Float]
    /// The final sample `[C, h, w]` (before decoding).
    public let latents: [Float]
    /// The initial noise `[C, h, w]` (store it to reproduce or vary the request).
    public let initialNoise: [Float]
    /// Step caching: the steps whose transformer call ran block 0 only (0 when caching is off).
    public var cachedSteps = 0
    /// Step caching: the relative change of block 0's residual measured at each step after the first.
    public var cacheChanges: [Double] = []
}

public enum SampleOutcome: Sendable {
    case image(GeneratedImage)
    /// Dropped by the callback after `afterStep` steps.
    case cancelled(afterStep: Int)

    public var image: GeneratedImage? { if case .image(let g) = self { return g } else { return nil } }
}

/// The sampling loop over a denoiser and a decoder.
public struct Sampler: Sendable {
    public let denoiser: any Denoiser
    public let decoder: any SampleDecoder
    public let isLatent: Bool
    public let schedulerConfig: SchedulerConfig
    /// The RNG kernel variant used for seeds.
    public var normalKernel: NormalKernel = .avx2

    /// - decoder: turns the final sample into an image in [-1, 1]; `VAEDecoder` applies the 1/scaling_factor
    ///   multiply of pipeline_dit.py:233 itself, `PixelSpaceDecoder` is the identity.
    public init(denoiser: any Denoiser, decoder: any SampleDecoder, isLatent: Bool, schedulerConfig: SchedulerConfig) {
        self.denoiser = denoiser
        self.decoder = decoder
        self.isLatent = isLatent
        self.schedulerConfig = schedulerConfig
    }

    /// The initial noise a request starts from, `[C, h, w]` for a sample of `h × w`.
    public func initialNoise(_ noise: InitialNoise, height h: Int, width w: Int) throws -> [Float] {
        let n = denoiser.inChannels * h * w
        switch noise {
        case .seed(let s):
            var g = TorchGenerator(seed: s, kernel: normalKernel)
            return g.randn(count: n)
        case .latents(let l):
            guard l.count == n else {
                throw PipelineError(.badRequest, "given initial noise has \(l.count) values, expected \(denoiser.inChannels)×\(h)×\(w) = \(n)")
            }
            return l
        }
    }

    /// Sample size (h, w) for an image of `height × width` pixels; throws if the model cannot produce it.
    public func sampleSize(height: Int, width: Int) throws -> (Int, Int) {
        let s = decoder.scale, p = denoiser.patchSize
        guard height > 0, width > 0, height % (s * p) == 0, width % (s * p) == 0 else {
            throw PipelineError(.badRequest, "image size \(width)×\(height) must be a positive multiple of \(s * p)")
        }
        return (height / s, width / s)
    }

    /// Runs `steps` steps of `sampler` for every request and decodes the survivors.
    /// - Parameters:
    ///   - height, width: image size in pixels (multiples of decoder.scale × patch size).
    ///   - tables: precomputed tables for (sampler, steps) to skip table computation; must match.
    ///   - callback: after each step; returns the request indices to drop (they stop, the others go on).
    public func generate(requests: [SampleRequest], steps: Int, sampler: SamplerName, height: Int, width: Int,
                         guidance: GuidanceChannels = .latent, tables: SchedulerTables? = nil,
                         callback: ((SamplerProgress) -> Set<Int>)? = nil) throws -> [SampleOutcome] {
        let (h, w) = try sampleSize(height: height, width: width)
        let C = denoiser.inChannels, Co = denoiser.outChannels
        guard Co == C || Co == 2 * C else {
            throw PipelineError(.badRequest, "model has \(Co) output channels for \(C) input channels (need C or 2C)")
        }
        let guided: Int
        switch guidance {
        case .latent: guided = C
        case .first(let n): guided = min(max(n, 0), C)
        }
        let plane = h * w, sampleCount = C * plane
        let null = denoiser.nullClass
        for r in requests where r.label < 0 || r.label > null {   // label == null: an unconditional sample
            throw PipelineError(.badRequest, "class \(r.label) is outside 0...\(null)")
        }
        for r in requests where !(r.cacheThreshold >= 0 && r.cacheThreshold.isFinite) {
            throw PipelineError(.badRequest, "cache threshold \(r.cacheThreshold) must be a finite number ≥ 0 (0 = off)")
        }
        let baseTables = try tables ?? Schedulers.tables(sampler, config: schedulerConfig, steps: steps)
        guard baseTables.sampler == sampler, baseTables.steps == steps else {
            throw PipelineError(.badRequest, "cached scheduler tables are for \(baseTables.sampler.rawValue) × \(baseTables.steps) steps")
        }
        let noise = try requests.map { try initialNoise($0.noise, height: h, width: w) }
        var x = noise
        var schedulers = try requests.map { _ in try Schedulers.make(tables: baseTables) }
        var live = Array(requests.indices)
        var droppedAt: [Int: Int] = [:]
        // Step caching per image (its threshold, its own state: batch-mates never change its decisions).
        let caches = requests.map { r -> FirstBlockCacheState? in
            r.cacheThreshold > 0 ? FirstBlockCacheState(threshold: r.cacheThreshold) : nil
        }

        var input = [Float]()
        input.reserveCapacity(2 * requests.count * sampleCount)
        for (k, t) in baseTables.timesteps.enumerated() where !live.isEmpty {
            let cfg = live.filter { requests[$0].guidanceScale > 1 }
            // Scaled input per request (DiTPipeline scales the re-duplicated batch, then steps on it).
            var xs: [Int: [Float]] = [:]
            for r in live { xs[r] = try schedulers[r].scaleModelInput(x[r], timestep: t) }
            let rows = live + cfg
            input.removeAll(keepingCapacity: true)          // one buffer for every step's batched input
            for r in rows { input += xs[r]! }
            let labels = live.map { requests[$0].label } + cfg.map { _ in null }
            // An image's rows (conditional, then unconditional when guided) share its cache decision, as both CFG
            // halves of DiTPipeline's one forward do in diffusers.
            let cache = live.enumerated().compactMap { i, r -> FirstBlockCacheGroup? in
                guard let state = caches[r] else { return nil }
                return FirstBlockCacheGroup(rows: [i] + (cfg.firstIndex(of: r).map { [live.count + $0] } ?? []), state: state)
            }
            // The tensor shares `input`'s buffer and is gone before the next step reuses it.
            let out = try denoiser.forward(Tensor(shape: [rows.count, C, h, w], data: input),
                                           timesteps: Array(repeating: t, count: rows.count), labels: labels, cache: cache)
            guard out.shape == [rows.count, Co, h, w] else {
                throw PipelineError(.badRequest, "denoiser returned shape \(out.shape), expected \([rows.count, Co, h, w])")
            }
            let outRow = Co * plane
            for (i, r) in live.enumerated() {
                let cond = i * outRow
                var mo = Array(out.data[cond..<(cond + sampleCount)])      // learned sigma: first C channels
                if let j = cfg.firstIndex(of: r) {
                    let uncond = (live.count + j) * outRow
                    let g = Float(requests[r].guidanceScale)
                    for q in 0..<(guided * plane) {
                        let ue = out.data[uncond + q]
                        mo[q] = ue + g * (out.data[cond + q] - ue)
                    }
                }
                x[r] = try schedulers[r].step(modelOutput: mo, timestep: t, sample: xs[r]!)
            }
            if let callback {
                let progress = SamplerProgress(step: k + 1, steps: baseTables.steps, timestep: t, active: live,
                                               latents: Dictionary(uniqueKeysWithValues: live.map { ($0, x[$0]) }),
                                               channels: C, height: h, width: w, isLatent: isLatent)
                let drop = callback(progress)
                for r in live where drop.contains(r) { droppedAt[r] = k + 1 }
                live.removeAll { drop.contains($0) }
            }
        }

        var outcomes = requests.indices.map { SampleOutcome.cancelled(afterStep: droppedAt[$0] ?? 0) }
        guard !live.isEmpty else { return outcomes }
        var z = [Float]()
        z.reserveCapacity(live.count * sampleCount)
        for r in live { z += x[r] }
        MemoryTrace.mark("sampler: denoised, before the decode")
        let decoded = try decoder.decode(Tensor(shape: [live.count, C, h, w], data: z))
        MemoryTrace.mark("sampler: decoded")
        let H = h * decoder.scale, W = w * decoder.scale
        guard decoded.shape == [live.count, 3, H, W] else {
            throw PipelineError(.badRequest, "decoder returned shape \(decoded.shape), expected \([live.count, 3, H, W])")
        }
        let imageCount = 3 * H * W
        for (i, r) in live.enumerated() {
            let img = ImageConversion.unitRange(Array(decoded.data[(i * imageCount)..<((i + 1) * imageCount)]))
            let rgb = ImageConversion.rgb8(chw: img, height: H, width: W)
            var image = GeneratedImage(rgb: rgb, image: img, latents: x[r], initialNoise: noise[r])
            image.cachedSteps = caches[r]?.skippedSteps ?? 0
            image.cacheChanges = caches[r]?.changes ?? []
            outcomes[r] = .image(image)
        }
        return outcomes
    }
}
