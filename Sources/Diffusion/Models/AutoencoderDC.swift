import Core
import Foundation
import Tensor
import Weights

/// The deep-compression autoencoder of Sana (diffusers models/autoencoders/autoencoder_dc.py, 0.42.1): `decode` maps
/// latents to images in [-1, 1], `encode` images to latents (a deterministic latent, no distribution). Spatial factor
/// 2^(stages − 1): 32 for the released f32c32 models. Tiling and slicing are not used (diffusers' defaults).
public final class AutoencoderDC: Sendable {
    /// `vae/config.json` (autoencoder_dc.py:430-453), class defaults for missing keys. Per-stage fields accept one
    /// string for every stage, as diffusers does.
    public struct Config: Decodable, Sendable, Equatable {
        public var inChannels = 3
        public var latentChannels = 32
        public var attentionHeadDim = 32
        public var encoderBlockTypes = ["ResBlock"]
        public var decoderBlockTypes = ["ResBlock"]
        public var encoderBlockOutChannels = [128, 256, 512, 512, 1024, 1024]
        public var decoderBlockOutChannels = [128, 256, 512, 512, 1024, 1024]
        public var encoderLayersPerBlock = [2, 2, 2, 3, 3, 3]
        public var decoderLayersPerBlock = [3, 3, 3, 3, 3, 3]
        public var encoderQkvMultiscales: [[Int]] = [[], [], [], [5], [5], [5]]
        public var decoderQkvMultiscales: [[Int]] = [[], [], [], [5], [5], [5]]
        public var upsampleBlockType = "pixel_shuffle"
        public var downsampleBlockType = "pixel_unshuffle"
        public var decoderNormTypes = ["rms_norm"]
        public var decoderActFns = ["silu"]
        public var encoderOutShortcut = true
        public var decoderInShortcut = true
        public var decoderConvActFn = "relu"
        public var scalingFactor = 1.0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case inChannels = "in_channels", latentChannels = "latent_channels", attentionHeadDim = "attention_head_dim"
            case encoderBlockTypes = "encoder_block_types", decoderBlockTypes = "decoder_block_types"
            case encoderBlockOutChannels = "encoder_block_out_channels", decoderBlockOutChannels = "decoder_block_out_channels"
            case encoderLayersPerBlock = "encoder_layers_per_block", decoderLayersPerBlock = "decoder_layers_per_block"
            case encoderQkvMultiscales = "encoder_qkv_multiscales", decoderQkvMultiscales = "decoder_qkv_multiscales"
            case upsampleBlockType = "upsample_block_type", downsampleBlockType = "downsample_block_type"
            case decoderNormTypes = "decoder_norm_types", decoderActFns = "decoder_act_fns"
            case encoderOutShortcut = "encoder_out_shortcut", decoderInShortcut = "decoder_in_shortcut"
            case decoderConvActFn = "decoder_conv_act_fn", scalingFactor = "scaling_factor"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            // a string, or a list of strings (one per stage)
            func names(_ key: CodingKeys, _ fallback: [String]) throws -> [String] {
                if let one = try? c.decode(String.self, forKey: key) { return [one] }
                return try c.value(key, default: fallback)
            }
            inChannels = try c.value(.inChannels, default: inChannels)
            latentChannels = try c.value(.latentChannels, default: latentChannels)
            attentionHeadDim = try c.value(.attentionHeadDim, default: attentionHeadDim)
            encoderBlockTypes = try names(.encoderBlockTypes, encoderBlockTypes)
            decoderBlockTypes = try names(.decoderBlockTypes, decoderBlockTypes)
            encoderBlockOutChannels = try c.value(.encoderBlockOutChannels, default: encoderBlockOutChannels)
            decoderBlockOutChannels = try c.value(.decoderBlockOutChannels, default: decoderBlockOutChannels)
            encoderLayersPerBlock = try c.value(.encoderLayersPerBlock, default: encoderLayersPerBlock)
            decoderLayersPerBlock = try c.value(.decoderLayersPerBlock, default: decoderLayersPerBlock)
            encoderQkvMultiscales = try c.value(.encoderQkvMultiscales, default: encoderQkvMultiscales)
            decoderQkvMultiscales = try c.value(.decoderQkvMultiscales, default: decoderQkvMultiscales)
            upsampleBlockType = try c.value(.upsampleBlockType, default: upsampleBlockType)
            downsampleBlockType = try c.value(.downsampleBlockType, default: downsampleBlockType)
            decoderNormTypes = try names(.decoderNormTypes, decoderNormTypes)
            decoderActFns = try names(.decoderActFns, decoderActFns)
            encoderOutShortcut = try c.value(.encoderOutShortcut, default: encoderOutShortcut)
            decoderInShortcut = try c.value(.decoderInShortcut, default: decoderInShortcut)
            decoderConvActFn = try c.value(.decoderConvActFn, default: decoderConvActFn)
            scalingFactor = try c.value(.scalingFactor, default: scalingFactor)
        }

        /// Image pixels per latent pixel (`spatial_compression_ratio`, autoencoder_dc.py:483).
        public var spatialScale: Int { 1 << max(encoderBlockOutChannels.count - 1, 0) }
    }

    public let config: Config
    let encoder: DCEncoder?
    let decoder: DCDecoder

    /// Builds the decoder, and the encoder when its weights are present (decode-only files are accepted) and
    /// `decoderOnly` is false (pipelines that only decode and convert weights at load skip it: converted tensors are
    /// resident, mapped ones only once read).
    public convenience init(config: Config, weights: WeightStore) throws {
        try self.init(config: config, weights: weights, decoderOnly: false)
    }

    public init(config: Config, weights: WeightStore, decoderOnly: Bool) throws {
        guard config.inChannels > 0, config.latentChannels > 0, config.attentionHeadDim > 0 else {
            throw ModelError(.unsupportedConfig, "AutoencoderDC config is inconsistent: in_channels, latent_channels and attention_head_dim must be positive")
        }
        self.config = config
        decoder = try DCDecoder(weights, config: config)
        encoder = !decoderOnly && weights.contains("encoder.conv_out.weight") ? try DCEncoder(weights, config: config) : nil
    }

    public var hasEncoder: Bool { encoder != nil }

    /// `vae.decode(z).sample` (autoencoder_dc.py `_decode`): unscaled latents in, raw image out (not clamped).
    // z: [B, lat, h, w] -> [B, in, h·s, w·s], s = decoder's spatial factor
    public func decode(_ z: Tensor) throws -> Tensor {
        let lat = config.latentChannels
        guard z.isImageBatch(channels: lat) else {
            throw ModelError(.badInput, "DC-AE decode needs latents [B, \(lat), h, w], got \(z.shape)")
        }
        return decoder(FeatureMap(z), ConvScratch()).tensor
    }

    /// `vae.encode(x).latent` (autoencoder_dc.py `_encode`): image in [-1, 1] in, latents out (unscaled).
    // x: [B, in, H, W] -> [B, lat, H/s, W/s]
    public func encode(_ x: Tensor) throws -> Tensor {
        guard let encoder else {
            throw ModelError(.missingWeight, "this DC-AE has no encoder weights (encoder.conv_out.weight is missing); it cannot encode images")
        }
        let s = config.spatialScale
        guard x.isImageBatch(channels: config.inChannels, multiple: s) else {
            throw ModelError(.badInput, "DC-AE encode needs images [B, \(config.inChannels), H, W] with H and W multiples of \(s), got \(x.shape)")
        }
        return encoder(FeatureMap(x), ConvScratch()).tensor
    }
}

/// Expands a per-stage field given as one value to every stage; checks the count otherwise.
private func perStage(_ values: [String], _ count: Int, _ name: String) throws -> [String] {
    if values.count == 1 { return Array(repeating: values[0], count: count) }
    guard values.count == count else {
        throw ModelError(.unsupportedConfig, "AutoencoderDC \(name) has \(values.count) entries for \(count) stages")
    }
    return values
}

/// Checks that the per-stage lists of one side agree and that every stage has a (possibly empty) multi-scale list.
private func checkStages(_ channels: [Int], _ layers: [Int], _ multiscales: [[Int]], _ side: String) throws {
    guard !channels.isEmpty, channels.allSatisfy({ $0 > 0 }), layers.count == channels.count,
          multiscales.count == channels.count, layers.allSatisfy({ $0 >= 0 }), layers[0] > 0 || channels.count >= 2 else {
        throw ModelError(.unsupportedConfig, "AutoencoderDC \(side): block_out_channels \(channels), layers_per_block \(layers) and qkv_multiscales (\(multiscales.count) entries) must describe the same stages")
    }
}

/// Encoder (autoencoder_dc.py:193-271): conv_in (a 3×3 conv, or a shortcut-free down block when stage 0 has no
/// layers), per stage its blocks then a down block (all but the last stage, and only stages with layers),
/// conv_out to the latent channels plus, with `out_shortcut`, the channel-group mean of its input.
struct DCEncoder: Sendable {
    enum ConvIn: Sendable {
        case conv(Conv2dLayer)
        case down(DCDownBlock)
    }

    let convIn: ConvIn
    let stages: [[DCBlock]]
    let convOut: Conv2dLayer
    let outShortcutGroup: Int?

    init(_ store: WeightStore, config: AutoencoderDC.Config) throws {
        let ch = config.encoderBlockOutChannels, layers = config.encoderLayersPerBlock, n = ch.count
        try checkStages(ch, layers, config.encoderQkvMultiscales, "encoder")
        let types = try perStage(config.encoderBlockTypes, n, "encoder_block_types")
        let unshuffle = config.downsampleBlockType == "pixel_unshuffle"
        if layers[0] > 0 {
            convIn = .conv(try Conv2dLayer(store, "encoder.conv_in", in: config.inChannels, out: ch[0], kernel: 3))
        } else {
            convIn = .down(try DCDownBlock(store, "encoder.conv_in", in: config.inChannels, out: ch[1], pixelUnshuffle: unshuffle, shortcut: false))
        }
        stages = try (0..<n).map { i in
            var blocks = try (0..<layers[i]).map { j in
                try DCBlock(store, "encoder.down_blocks.\(i).\(j)", type: types[i], channels: ch[i], headDim: config.attentionHeadDim,
                            normType: "rms_norm", act: "silu", multiscales: config.encoderQkvMultiscales[i])
            }
            if i < n - 1 && layers[i] > 0 {
                blocks.append(.down(try DCDownBlock(store, "encoder.down_blocks.\(i).\(layers[i])", in: ch[i], out: ch[i + 1],
                                                    pixelUnshuffle: unshuffle, shortcut: true)))
            }
            return blocks
        }
        convOut = try Conv2dLayer(store, "encoder.conv_out", in: ch[n - 1], out: config.latentChannels, kernel: 3)
        if config.encoderOutShortcut {
            guard ch[n - 1] % config.latentChannels == 0 else {
                throw ModelError(.unsupportedConfig, "AutoencoderDC encoder: \(ch[n - 1]) channels do not average into \(config.latentChannels) latent channels")
            }
            outShortcutGroup = ch[n - 1] / config.latentChannels
        } else {
            outShortcutGroup = nil
        }
    }

    // x: [B, in, H, W] -> [B, lat, H/s, W/s]
    func callAsFunction(_ x: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        var h: FeatureMap
        switch convIn {
        case .conv(let conv): h = scratch.same(conv, x)
        case .down(let down): h = down(x, scratch)
        }
        for stage in stages {
            for block in stage { h = block(h, scratch) }
        }
        let y = scratch.same(convOut, h)
        if let g = outShortcutGroup {
            let mean = FeatureMap(batch: h.batch, channels: y.channels, height: h.height, width: h.width)
            channelGroupMean(mean.pointer, h.pointer, batch: h.batch, channels: y.channels, group: g, spatial: h.spatial)
            add(y.pointer, y.pointer, mean.pointer, count: y.count)
        }
        return y
    }
}

/// Decoder (autoencoder_dc.py:274-374): conv_in plus, with `in_shortcut`, the latent repeated across channel groups;
/// stages from last to first, each an up block (all but the last stage, and only stages with layers) then its blocks;
/// RMSNorm across channels (weight and bias, eps 1e-5), the conv activation, conv_out (a 3×3 conv, or a shortcut-free
/// up block when stage 0 has no layers).
struct DCDecoder: Sendable {
    enum ConvOut: Sendable {
        case conv(Conv2dLayer)
        case up(DCUpBlock)
    }

    let convIn: Conv2dLayer
    let inShortcutRepeats: Int?
    let stages: [[DCBlock]]        // in execution order: stage n−1 first
    let normOut: DCChannelNorm
    let convAct: DCActivation
    let convOut: ConvOut

    init(_ store: WeightStore, config: AutoencoderDC.Config) throws {
        let ch = config.decoderBlockOutChannels, layers = config.decoderLayersPerBlock, n = ch.count
        try checkStages(ch, layers, config.decoderQkvMultiscales, "decoder")
        let types = try perStage(config.decoderBlockTypes, n, "decoder_block_types")
        let norms = try perStage(config.decoderNormTypes, n, "decoder_norm_types")
        let acts = try perStage(config.decoderActFns, n, "decoder_act_fns")
        let interpolate = config.upsampleBlockType == "interpolate"
        convIn = try Conv2dLayer(store, "decoder.conv_in", in: config.latentChannels, out: ch[n - 1], kernel: 3)
        if config.decoderInShortcut {
            guard ch[n - 1] % config.latentChannels == 0 else {
                throw ModelError(.unsupportedConfig, "AutoencoderDC decoder: \(config.latentChannels) latent channels do not repeat into \(ch[n - 1])")
            }
            inShortcutRepeats = ch[n - 1] / config.latentChannels
        } else {
            inShortcutRepeats = nil
        }
        stages = try (0..<n).reversed().map { i in
            var blocks: [DCBlock] = []
            var j = 0
            if i < n - 1 && layers[i] > 0 {
                blocks.append(.up(try DCUpBlock(store, "decoder.up_blocks.\(i).0", in: ch[i + 1], out: ch[i], interpolate: interpolate, shortcut: true)))
                j = 1
            }
            for l in 0..<layers[i] {
                blocks.append(try DCBlock(store, "decoder.up_blocks.\(i).\(j + l)", type: types[i], channels: ch[i],
                                          headDim: config.attentionHeadDim, normType: norms[i], act: acts[i],
                                          multiscales: config.decoderQkvMultiscales[i]))
            }
            return blocks
        }
        let channels = layers[0] > 0 ? ch[0] : ch[1]
        normOut = try DCChannelNorm(store, "decoder.norm_out", type: "rms_norm", channels: channels)
        convAct = try DCActivation(config.decoderConvActFn, "decoder_conv_act_fn")
        convOut = layers[0] > 0
            ? .conv(try Conv2dLayer(store, "decoder.conv_out", in: channels, out: config.inChannels, kernel: 3))
            : .up(try DCUpBlock(store, "decoder.conv_out", in: channels, out: config.inChannels, interpolate: interpolate, shortcut: false))
    }

    // z: [B, lat, h, w] -> [B, in, h·s, w·s]
    func callAsFunction(_ z: FeatureMap, _ scratch: ConvScratch) -> FeatureMap {
        var h = scratch.same(convIn, z)
        if let r = inShortcutRepeats {
            let repeated = FeatureMap(batch: z.batch, channels: h.channels, height: z.height, width: z.width)
            repeatChannels(repeated.pointer, z.pointer, batch: z.batch, channels: z.channels, repeats: r, spatial: z.spatial)
            add(h.pointer, h.pointer, repeated.pointer, count: h.count)
        }
        MemoryTrace.mark("dc-ae decode: conv_in → \(h.channels)×\(h.height)×\(h.width)")
        for (k, stage) in stages.enumerated() {
            for (j, block) in stage.enumerated() {
                h = block(h, scratch)
                MemoryTrace.mark("dc-ae decode: stage \(stages.count - 1 - k) block \(j) → \(h.channels)×\(h.height)×\(h.width)")
            }
        }
        normOut(h)
        convAct(h)
        switch convOut {
        case .conv(let conv): return scratch.same(conv, h)
        case .up(let up): return up(h, scratch)
        }
    }
}

/// Sana's last step before pixels: `vae.decode(latents / scaling_factor)` (pipeline_sana.py:961,
/// pipeline_sana_sprint.py:843; a float32 division, not a multiply by the reciprocal).
public struct DCAEDecoder: SampleDecoder {
    public let vae: AutoencoderDC

    public init(vae: AutoencoderDC) { self.vae = vae }

    public var scale: Int { vae.config.spatialScale }

    // z: [B, lat, h, w] (scaled latents) -> [B, 3, h·scale, w·scale] in [-1, 1] (not clamped)
    public func decode(_ z: Tensor) throws -> Tensor {
        var latents = z
        let sf = Float(vae.config.scalingFactor)
        for i in 0..<latents.count { latents.data[i] /= sf }
        return try vae.decode(latents)
    }
}
