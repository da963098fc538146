import Foundation
import Tensor
import Weights

/// The KL autoencoder of Stable Diffusion / DiT (diffusers models/autoencoders/autoencoder_kl.py;
/// docs/engine.md §3): `decode` turns latents into images in [-1, 1] (§3.2), `encode` gives the latent
/// Gaussian (§3.5). Tiling and slicing are not used (diffusers' defaults).
public final class AutoencoderKL: Sendable {
    /// `vae/config.json`, with the class defaults (autoencoder_kl.py:78-98) for missing keys.
    public struct Config: Decodable, Sendable, Equatable {
        public var inChannels = 3
        public var outChannels = 3
        public var downBlockTypes = ["DownEncoderBlock2D"]
        public var upBlockTypes = ["UpDecoderBlock2D"]
        public var blockOutChannels = [64]
        public var layersPerBlock = 1
        public var actFn = "silu"
        public var latentChannels = 4
        public var normNumGroups = 32
        public var sampleSize: Int? = 32
        public var scalingFactor = 0.18215
        public var shiftFactor: Double? = nil
        public var latentsMean: [Double]? = nil
        public var latentsStd: [Double]? = nil
        public var forceUpcast = true
        public var useQuantConv = true
        public var usePostQuantConv = true
        public var midBlockAddAttention = true

        public init() {}

        enum CodingKeys: String, CodingKey {
            case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
            case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
            case actFn = "act_fn", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
            case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
            case latentsMean = "latents_mean", latentsStd = "latents_std", forceUpcast = "force_upcast"
            case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
            case midBlockAddAttention = "mid_block_add_attention"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            inChannels = try c.value(.inChannels, default: inChannels)
            outChannels = try c.value(.outChannels, default: outChannels)
            downBlockTypes = try c.value(.downBlockTypes, default: downBlockTypes)
            upBlockTypes = try c.value(.upBlockTypes, default: upBlockTypes)
            blockOutChannels = try c.value(.blockOutChannels, default: blockOutChannels)
            layersPerBlock = try c.value(.layersPerBlock, default: layersPerBlock)
            actFn = try c.value(.actFn, default: actFn)
            latentChannels = try c.value(.latentChannels, default: latentChannels)
            normNumGroups = try c.value(.normNumGroups, default: normNumGroups)
            // sample_size is an int, or [h, w] in some files; only informational here.
            if c.contains(.sampleSize) {
                if let n = try? c.decode(Int.self, forKey: .sampleSize) {
                    sampleSize = n
                } else {
                    sampleSize = (try? c.decode([Int].self, forKey: .sampleSize))?.first
                }
            }
            scalingFactor = try c.value(.scalingFactor, default: scalingFactor)
            shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
            latentsMean = try c.decodeIfPresent([Double].self, forKey: .latentsMean)
            latentsStd = try c.decodeIfPresent([Double].self, forKey: .latentsStd)
            forceUpcast = try c.value(.forceUpcast, default: forceUpcast)
            useQuantConv = try c.value(.useQuantConv, default: useQuantConv)
            usePostQuantConv = try c.value(.usePostQuantConv, default: usePostQuantConv)
            midBlockAddAttention = try c.value(.midBlockAddAttention, default: midBlockAddAttention)
        }

        /// Image pixels per latent pixel: 2^(number of blocks − 1).
        public var spatialScale: Int { 1 << max(blockOutChannels.count - 1, 0) }
    }

    public let config: Config
    let decoder: VAEDecoderStack
    let encoder: VAEEncoderStack?
    let postQuantConv: Conv2dLayer?
    let quantConv: Conv2dLayer?

    /// Builds the decoder, and the encoder when its weights are present (decode-only files are accepted;
    /// `encode` then throws).
    /// `decoderOnly`: skip the encoder even when its weights are there (see AutoencoderDC).
    public convenience init(config: Config, weights: WeightStore) throws {
        try self.init(config: config, weights: weights, decoderOnly: false)
    }

    public init(config: Config, weights: WeightStore, decoderOnly: Bool) throws {
        guard !config.blockOutChannels.isEmpty, config.blockOutChannels.allSatisfy({ $0 > 0 }),
              config.layersPerBlock >= 1, config.latentChannels > 0, config.inChannels > 0, config.outChannels > 0 else {
            throw ModelError(.unsupportedConfig, "AutoencoderKL config is inconsistent: block_out_channels \(config.blockOutChannels), layers_per_block \(config.layersPerBlock)")
        }
        guard config.actFn == "silu" else {
            throw ModelError(.unsupportedConfig, "AutoencoderKL act_fn \"\(config.actFn)\" is not supported (only silu)")
        }
        guard config.upBlockTypes.count == config.blockOutChannels.count,
              config.upBlockTypes.allSatisfy({ $0 == "UpDecoderBlock2D" }) else {
            throw ModelError(.unsupportedConfig, "AutoencoderKL up_block_types \(config.upBlockTypes) are not supported (one UpDecoderBlock2D per block_out_channels entry)")
        }
        self.config = config
        decoder = try VAEDecoderStack(weights, config: config)
        postQuantConv = config.usePostQuantConv
            ? try Conv2dLayer(weights, "post_quant_conv", in: config.latentChannels, out: config.latentChannels, kernel: 1) : nil
        if !decoderOnly && weights.contains("encoder.conv_in.weight") {
            guard config.downBlockTypes.count == config.blockOutChannels.count,
                  config.downBlockTypes.allSatisfy({ $0 == "DownEncoderBlock2D" }) else {
                throw ModelError(.unsupportedConfig, "AutoencoderKL down_block_types \(config.downBlockTypes) are not supported (one DownEncoderBlock2D per block_out_channels entry)")
            }
            encoder = try VAEEncoderStack(weights, config: config)
            quantConv = config.useQuantConv
                ? try Conv2dLayer(weights, "quant_conv", in: 2 * config.latentChannels, out: 2 * config.latentChannels, kernel: 1) : nil
        } else {
            encoder = nil
            quantConv = nil
        }
    }

    public var hasEncoder: Bool { encoder != nil }

    /// `vae.decode(z).sample` (autoencoder_kl.py:199-240): unscaled latents in, raw image out (not clamped).
    // z: [B, lat, h, w] -> [B, out, h·s, w·s], s = spatialScale
    public func decode(_ z: Tensor) throws -> Tensor {
        let lat = config.latentChannels
        guard z.isImageBatch(channels: lat) else {
            throw ModelError(.badInput, "VAE decode needs latents [B, \(lat), h, w], got \(z.shape)")
        }
        let scratch = ConvScratch()
        var h = FeatureMap(z)
        if let postQuantConv { h = scratch.same(postQuantConv, h) }
        return decoder(h, scratch).tensor
    }

    /// `vae.encode(x).latent_dist` (autoencoder_kl.py:158-197, vae.py:690-743): image in [-1, 1] in,
    /// the diagonal Gaussian over latents out (mean, logvar clamped to [-30, 20], std = exp(logvar/2)).
    // x: [B, in, H, W] -> mean/logvar/std: [B, lat, H/s, W/s]
    public func encode(_ x: Tensor) throws -> LatentDistribution {
        guard let encoder else {
            throw ModelError(.missingWeight, "this VAE has no encoder weights (encoder.conv_in.weight is missing); it cannot encode images")
        }
        let s = config.spatialScale
        guard x.isImageBatch(channels: config.inChannels, multiple: s) else {
            throw ModelError(.badInput, "VAE encode needs images [B, \(config.inChannels), H, W] with H and W multiples of \(s), got \(x.shape)")
        }
        let scratch = ConvScratch()
        var h = encoder(FeatureMap(x), scratch)
        if let quantConv { h = scratch.same(quantConv, h) }
        // split channels: mean = first lat, logvar = next lat
        let lat = config.latentChannels, plane = lat * h.spatial
        var mean = [Float](), logvar = [Float](), std = [Float]()
        for b in 0..<h.batch {
            let base = h.pointer + b * 2 * plane
            mean += UnsafeBufferPointer(start: base, count: plane)
            for i in 0..<plane {
                let lv = min(max(base[plane + i], -30), 20)
                logvar.append(lv)
                std.append(exp(0.5 * lv))
            }
        }
        let shape = [h.batch, lat, h.height, h.width]
        return LatentDistribution(mean: Tensor(shape: shape, data: mean), logvar: Tensor(shape: shape, data: logvar),
                                  std: Tensor(shape: shape, data: std))
    }
}

/// DiagonalGaussianDistribution of the VAE encoder (vae.py:690-743).
public struct LatentDistribution: Sendable {
    public let mean: Tensor
    /// Clamped to [-30, 20].
    public let logvar: Tensor
    /// exp(0.5 · logvar).
    public let std: Tensor

    /// The mode (= mean).
    public func mode() -> Tensor { mean }

    /// `mean + std · noise`, with `noise` drawn like diffusers' `randn_tensor(mean.shape, generator)`.
    public func sample(noise: Tensor) throws -> Tensor {
        guard noise.shape == mean.shape else {
            throw ModelError(.badInput, "latent noise has shape \(noise.shape), expected \(mean.shape)")
        }
        var out = mean
        for i in 0..<out.count { out.data[i] = mean.data[i] + std.data[i] * noise.data[i] }
        return out
    }
}
