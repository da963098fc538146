// A loaded pipeline: denoiser + decoder + scheduler config + labels, from a diffusers folder
// (DiffusionPipeline.from_pretrained for DiTPipeline-style folders; docs/engine.md §1.2).
import Foundation
import Tensor
import Weights

public struct DiffusionPipeline: Sendable {
    public let folder: PipelineFolder
    public let denoiser: any Denoiser
    public let decoder: any SampleDecoder
    /// The transformer config as loaded (class defaults applied).
    public let transformerConfig: DiTTransformer2DModel.Config
    /// The VAE config, nil for pixel-space pipelines.
    public let vaeConfig: AutoencoderKL.Config?
    public let schedulerConfig: SchedulerConfig
    /// The sampler of the folder's scheduler class (ddim for DiT), if it is one we implement.
    public let defaultSampler: SamplerName?
    /// Label name → class id (id2label split on ","), and the raw id2label.
    public var labels: [String: Int] { folder.labels }
    public var id2label: [Int: String] { folder.id2label }
    public var isLatent: Bool { vaeConfig != nil }
    /// Default image size in pixels: sample_size × decoder scale (square, as DiTPipeline).
    public var defaultImageSize: Int { transformerConfig.sampleSize * decoder.scale }
    /// Number of classes: labels 0..<classCount; classCount itself is the null class (unconditional).
    public var classCount: Int { denoiser.nullClass }

    /// Loads a pipeline folder. Any problem — missing or corrupt files, unsupported classes, weights that do not
    /// fit the config — is thrown as one error with a one-line description.
    /// `precision` nil: the weights as stored; else converted to it at load.
    public static func load(_ url: URL, precision: WeightPrecision? = nil) throws -> DiffusionPipeline {
        let folder = try PipelineFolder(url: url)
        return try load(folder, precision: precision)
    }

    public static func load(path: String, precision: WeightPrecision? = nil) throws -> DiffusionPipeline {
        try load(URL(fileURLWithPath: path), precision: precision)
    }

    public static func load(_ folder: PipelineFolder, precision: WeightPrecision? = nil) throws -> DiffusionPipeline {
        let t = folder.transformer
        guard t.className == "DiTTransformer2DModel" else {
            throw PipelineError(.unsupportedComponent, "\(t.name): \(t.className.isEmpty ? "unknown class" : t.className) is not supported (DiTTransformer2DModel only)")
        }
        let tConfig = try t.decodeConfig(DiTTransformer2DModel.Config.self)
        let denoiser = try DiTTransformer2DModel(config: tConfig, weights: t.openWeights(precision: precision))

        var vaeConfig: AutoencoderKL.Config? = nil
        let decoder: any SampleDecoder
        if let v = folder.vae {
            guard v.className == "AutoencoderKL" else {
                throw PipelineError(.unsupportedComponent, "vae: \(v.className) is not supported (AutoencoderKL only)")
            }
            let c = try v.decodeConfig(AutoencoderKL.Config.self)
            guard c.latentChannels == tConfig.inChannels else {
                throw PipelineError(.badConfig, "vae latent_channels \(c.latentChannels) ≠ transformer in_channels \(tConfig.inChannels)")
            }
            vaeConfig = c
            decoder = VAEDecoder(vae: try AutoencoderKL(config: c, weights: v.openWeights(precision: precision),
                                                         decoderOnly: precision != nil))
        } else {
            guard tConfig.inChannels == 3 else {
                throw PipelineError(.badConfig, "no vae/ and transformer in_channels is \(tConfig.inChannels): a pixel-space model needs 3")
            }
            decoder = PixelSpaceDecoder()
        }
        return DiffusionPipeline(folder: folder, denoiser: denoiser, decoder: decoder, transformerConfig: tConfig,
                                 vaeConfig: vaeConfig, schedulerConfig: folder.scheduler,
                                 defaultSampler: folder.scheduler.defaultSampler)
    }

    /// The sampling loop over this pipeline's components.
    public var sampler: Sampler {
        Sampler(denoiser: denoiser, decoder: decoder, isLatent: isLatent, schedulerConfig: schedulerConfig)
    }

    /// A small RGB preview of a sample `[C, h, w]` (see `Preview`).
    public func preview(sample: [Float], height: Int, width: Int, maxSide: Int = 64) -> RGBImage {
        Preview.image(sample: sample, channels: denoiser.inChannels, height: height, width: width,
                      latent: isLatent, maxSide: maxSide)
    }

    /// Scheduler tables for (sampler, steps) from this pipeline's scheduler config (cacheable).
    public func schedulerTables(_ name: SamplerName, steps: Int) throws -> SchedulerTables {
        try Schedulers.tables(name, config: schedulerConfig, steps: steps)
    }

    /// Runs the sampler: see `Sampler.generate`. Height/width default to the model's native size.
    public func generate(requests: [SampleRequest], steps: Int, sampler name: SamplerName? = nil,
                         height: Int? = nil, width: Int? = nil, guidance: GuidanceChannels = .latent,
                         tables: SchedulerTables? = nil,
                         callback: ((SamplerProgress) -> Set<Int>)? = nil) throws -> [SampleOutcome] {
        guard let s = name ?? defaultSampler else {
            throw PipelineError(.badRequest, "the folder's scheduler \(schedulerConfig.className ?? "?") is not supported; name a sampler")
        }
        return try sampler.generate(requests: requests, steps: steps, sampler: s, height: height ?? defaultImageSize,
                                    width: width ?? defaultImageSize, guidance: guidance, tables: tables, callback: callback)
    }
}
