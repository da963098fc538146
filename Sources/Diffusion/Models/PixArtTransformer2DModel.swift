import Foundation
import Tensor
import Weights

/// PixArt-α / PixArt-Σ transformer (diffusers models/transformers/pixart_transformer_2d.py, 0.42.1): patch embedding
/// with the sin-cos table (`interpolation_scale`), adaLN-single timestep conditioning (plus PixArt-α's resolution and
/// aspect-ratio embeddings when `use_additional_conditions`), and per block (BasicTransformerBlock with
/// `norm_type="ada_norm_single"`, attention.py:752-1080) softmax self-attention, masked cross-attention to the
/// projected caption, and the GELU-tanh feed-forward. Learned sigma: `out_channels = 2·in_channels`.
public final class PixArtTransformer2DModel: Sendable {
    /// `config.json`: every `__init__` argument (pixart_transformer_2d.py:84-108), class defaults for missing keys.
    public struct Config: Decodable, Sendable, Equatable {
        public var numAttentionHeads = 16
        public var attentionHeadDim = 72
        public var inChannels = 4
        public var outChannels: Int? = 8
        public var numLayers = 28
        public var crossAttentionDim: Int? = 1152
        public var attentionBias = true
        public var sampleSize = 128
        public var patchSize = 2
        public var activationFn = "gelu-approximate"
        public var numEmbedsAdaNorm: Int? = 1000
        public var normType = "ada_norm_single"
        public var normElementwiseAffine = false
        public var normEps = 1e-6
        public var interpolationScale: Double? = nil
        public var useAdditionalConditions: Bool? = nil
        public var captionChannels: Int? = nil
        public var attentionType: String? = "default"

        public init() {}

        enum CodingKeys: String, CodingKey {
            case numAttentionHeads = "num_attention_heads", attentionHeadDim = "attention_head_dim"
            case inChannels = "in_channels", outChannels = "out_channels", numLayers = "num_layers"
            case crossAttentionDim = "cross_attention_dim", attentionBias = "attention_bias", sampleSize = "sample_size"
            case patchSize = "patch_size", activationFn = "activation_fn", numEmbedsAdaNorm = "num_embeds_ada_norm"
            case normType = "norm_type", normElementwiseAffine = "norm_elementwise_affine", normEps = "norm_eps"
            case interpolationScale = "interpolation_scale", useAdditionalConditions = "use_additional_conditions"
            case captionChannels = "caption_channels", attentionType = "attention_type"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numAttentionHeads = try c.value(.numAttentionHeads, default: numAttentionHeads)
            attentionHeadDim = try c.value(.attentionHeadDim, default: attentionHeadDim)
            inChannels = try c.value(.inChannels, default: inChannels)
            outChannels = try c.nullable(.outChannels, default: outChannels)
            numLayers = try c.value(.numLayers, default: numLayers)
            crossAttentionDim = try c.nullable(.crossAttentionDim, default: crossAttentionDim)
            attentionBias = try c.value(.attentionBias, default: attentionBias)
            sampleSize = try c.value(.sampleSize, default: sampleSize)
            patchSize = try c.value(.patchSize, default: patchSize)
            activationFn = try c.value(.activationFn, default: activationFn)
            numEmbedsAdaNorm = try c.nullable(.numEmbedsAdaNorm, default: numEmbedsAdaNorm)
            normType = try c.value(.normType, default: normType)
            normElementwiseAffine = try c.value(.normElementwiseAffine, default: normElementwiseAffine)
            normEps = try c.value(.normEps, default: normEps)
            interpolationScale = try c.nullable(.interpolationScale, default: interpolationScale)
            useAdditionalConditions = try c.nullable(.useAdditionalConditions, default: useAdditionalConditions)
            captionChannels = try c.nullable(.captionChannels, default: captionChannels)
            attentionType = try c.nullable(.attentionType, default: attentionType)
        }

        /// Transformer width E = heads · head dim.
        public var innerDim: Int { numAttentionHeads * attentionHeadDim }
        /// out_channels, or in_channels when absent.
        public var resolvedOutChannels: Int { outChannels ?? inChannels }
        /// `use_additional_conditions`, or `sample_size == 128` when unset (pixart_transformer_2d.py:129-133).
        public var resolvedAdditionalConditions: Bool { useAdditionalConditions ?? (sampleSize == 128) }
        /// `interpolation_scale`, or `max(sample_size // 64, 1)` when unset (pixart_transformer_2d.py:141-145).
        public var resolvedInterpolationScale: Double { interpolationScale ?? Double(max(sampleSize / 64, 1)) }
    }

    public let config: Config
    let patchEmbed: LinearLayer                // pos_embed.proj, Conv2d(C, E, p, p) as [E, C·p·p]
    let adaLN: AdaLayerNormSingle              // adaln_single
    let captionProjection: CaptionProjection?  // caption_projection (when caption_channels is set)
    let blocks: [PixArtBlock]
    let outputHead: ModulatedOutputHead        // scale_shift_table [2, E], proj_out [p·p·Co, E]
    private let positionTables = PositionTableCache()

    public var inChannels: Int { config.inChannels }
    public var outChannels: Int { config.resolvedOutChannels }
    public var patchSize: Int { config.patchSize }
    /// Width of the caption embeddings the forward takes (caption_channels, or cross_attention_dim without projection).
    public var captionChannels: Int { config.captionChannels ?? config.crossAttentionDim ?? config.innerDim }

    public init(config: Config, weights: WeightStore) throws {
        let e = config.innerDim, p = config.patchSize, c = config.inChannels
        guard config.normType == "ada_norm_single", config.numEmbedsAdaNorm != nil else {
            throw ModelError(.unsupportedConfig, "PixArt norm_type \"\(config.normType)\" is not supported (only ada_norm_single with num_embeds_ada_norm)")
        }
        guard config.activationFn == "gelu-approximate" else {
            throw ModelError(.unsupportedConfig, "PixArt activation_fn \"\(config.activationFn)\" is not supported (only gelu-approximate)")
        }
        guard (config.attentionType ?? "default") == "default", !config.normElementwiseAffine else {
            throw ModelError(.unsupportedConfig, "PixArt attention_type \"\(config.attentionType ?? "")\" or norm_elementwise_affine true is not supported")
        }
        guard let crossDim = config.crossAttentionDim else {
            throw ModelError(.unsupportedConfig, "PixArt without cross_attention_dim (no caption) is not supported")
        }
        guard config.numAttentionHeads > 0, config.attentionHeadDim > 0, e % 4 == 0, p > 0, c > 0, config.resolvedOutChannels > 0,
              config.numLayers >= 1, config.sampleSize >= p, config.captionChannels == nil || crossDim == e else {
            throw ModelError(.unsupportedConfig, "PixArt config is inconsistent: width \(e) must be a positive multiple of 4, patch and channels positive, at least one layer, and cross_attention_dim \(crossDim) equal to the width when the caption is projected")
        }
        self.config = config
        patchEmbed = try LinearLayer(weights, "pos_embed.proj", in: c * p * p, out: e, conv: (c, p))
        adaLN = try AdaLayerNormSingle(weights, "adaln_single", width: e, additionalConditions: config.resolvedAdditionalConditions)
        captionProjection = try config.captionChannels.map {
            try CaptionProjection(weights, "caption_projection", captionChannels: $0, width: e)
        }
        blocks = try (0..<config.numLayers).map { try PixArtBlock(weights, "transformer_blocks.\($0)", config: config, crossDim: crossDim) }
        outputHead = try ModulatedOutputHead(weights, width: e, patch: p, outChannels: config.resolvedOutChannels)
    }

    /// `transformer(x, encoder_hidden_states, timestep, added_cond_kwargs, encoder_attention_mask).sample`
    /// (pixart_transformer_2d.py:258-362). `resolution` holds (h, w) per item and `aspectRatio` one value per item;
    /// both are required exactly when the model uses additional conditions.
    // x: [B, C, H, W], timesteps: [B], caption: [B, L, Dc], mask: [B, L]?, resolution: [B·2]?, aspectRatio: [B]? -> [B, Co, H, W]
    public func forward(_ x: Tensor, timesteps: [Float], caption: Tensor, captionMask: [Float]?,
                        resolution: [Float]? = nil, aspectRatio: [Float]? = nil) throws -> Tensor {
        let p = config.patchSize, c = config.inChannels, e = config.innerDim
        guard x.isImageBatch(channels: c, multiple: p) else {
            throw ModelError(.badInput, "PixArt input must be [B, \(c), H, W] with H and W multiples of \(p), got \(x.shape)")
        }
        let batch = x.shape[0], height = x.shape[2], width = x.shape[3]
        guard caption.shape.count == 3, caption.shape[0] == batch, caption.shape[1] > 0, caption.shape[2] == captionChannels else {
            throw ModelError(.badInput, "PixArt caption embeddings must be [\(batch), L, \(captionChannels)], got \(caption.shape)")
        }
        let l = caption.shape[1]
        guard timesteps.count == batch else {
            throw ModelError(.badInput, "PixArt got \(timesteps.count) timesteps for a batch of \(batch)")
        }
        if let captionMask, captionMask.count != batch * l {
            throw ModelError(.badInput, "PixArt caption mask has \(captionMask.count) values, expected \(batch) × \(l)")
        }
        if config.resolvedAdditionalConditions {
            guard let resolution, let aspectRatio, resolution.count == 2 * batch, aspectRatio.count == batch else {
                throw ModelError(.badInput, "this PixArt transformer uses additional conditions: resolution (h, w) and aspect ratio per item are required")
            }
        }

        let gh = height / p, gw = width / p, n = gh * gw, rows = batch * n
        let attn1 = blocks[0].attn1, attn2 = blocks[0].attn2
        // Activations for this forward.
        let hidden = FloatBuffer(count: rows * e), normed = FloatBuffer(count: rows * max(e, c * p * p))
        let q = FloatBuffer(count: rows * e), k = FloatBuffer(count: rows * e), v = FloatBuffer(count: rows * e)
        let attended = FloatBuffer(count: rows * e), projected = FloatBuffer(count: rows * e)
        let context = FloatBuffer(count: batch * l * max(e, captionChannels)), contextScratch = FloatBuffer(count: batch * l * e)
        let crossK = FloatBuffer(count: batch * l * e), crossV = FloatBuffer(count: batch * l * e)
        let ffHidden = FloatBuffer(count: rows * 4 * e)
        let selfScores = FloatBuffer(count: attn1.scoresCount(queryTokens: n, keyTokens: n))
        let crossScores = FloatBuffer(count: attn2.scoresCount(queryTokens: n, keyTokens: l))
        let mod = FloatBuffer(count: batch * 6 * e)

        // 1. Patch embedding + sin-cos table (base size sample_size / p)              [B, N, E]
        x.data.withUnsafeBufferPointer { xp in
            patchify(normed.pointer, xp.baseAddress!, batch: batch, channels: c, height: height, width: width, patch: p)
        }
        patchEmbed(hidden.pointer, normed.pointer, rows: rows, items: batch)
        let pos = positionTables.table(embedDim: e, gridHeight: gh, gridWidth: gw, baseSize: config.sampleSize / p,
                                       interpolationScale: config.resolvedInterpolationScale)
        addBroadcast(hidden.pointer, pos, batch: batch, count: n * e)

        // 2. adaLN-single: modulation [B, 6E], embedded timestep [B, E]
        let cond = adaLN(timesteps, resolution: resolution, aspectRatio: aspectRatio)

        // Caption: caption_projection(caption), or the caption as given                 [B, L, Dkv]
        caption.data.withUnsafeBufferPointer { cp in
            if let captionProjection {
                captionProjection(context.pointer, cp.baseAddress!, rows: batch * l, items: batch, scratch: contextScratch.pointer)
            } else {
                context.pointer.update(from: cp.baseAddress!, count: caption.count)
            }
        }
        let bias = keyBias(mask: captionMask, batch: batch, keys: l)

        // 3. Blocks
        bias.withUnsafeBufferPointer { biasPointer in
            for block in blocks {
                let m = mod.pointer, stride = 6 * e
                addScaleShiftTable(m, table: block.scaleShiftTable, cond.modulation, batch: batch, stride: stride)
                // n = LN(x)·(1 + scale_msa) + shift_msa;  x += gate_msa · attn1(n)
                layerNormModulate(normed.pointer, hidden.pointer, shift: m, scale: m + e, modStride: stride,
                                  batch: batch, tokens: n, features: e, eps: block.normEps)
                block.attn1.project(q: q.pointer, k: k.pointer, v: v.pointer, x: normed.pointer, queryRows: rows,
                                    context: normed.pointer, keyRows: rows, items: batch)
                block.attn1.softmaxAttention(projected.pointer, q: q.pointer, k: k.pointer, v: v.pointer, batch: batch,
                                             queryTokens: n, keyTokens: n, keyBias: nil, attended: attended.pointer, scores: selfScores)
                addGated(hidden.pointer, gate: m + 2 * e, gateStride: stride, projected.pointer, batch: batch, tokens: n, features: e)

                // x += attn2(x, caption, mask)  (no norm before PixArt's cross-attention, attention.py:1026-1029)
                block.attn2.project(q: q.pointer, k: crossK.pointer, v: crossV.pointer, x: hidden.pointer, queryRows: rows,
                                    context: context.pointer, keyRows: batch * l, items: batch)
                block.attn2.softmaxAttention(projected.pointer, q: q.pointer, k: crossK.pointer, v: crossV.pointer, batch: batch,
                                             queryTokens: n, keyTokens: l, keyBias: biasPointer.baseAddress!,
                                             attended: attended.pointer, scores: crossScores)
                add(hidden.pointer, hidden.pointer, projected.pointer, count: rows * e)

                // n = LN(x)·(1 + scale_mlp) + shift_mlp;  x += gate_mlp · ff(n)
                layerNormModulate(normed.pointer, hidden.pointer, shift: m + 3 * e, scale: m + 4 * e, modStride: stride,
                                  batch: batch, tokens: n, features: e, eps: block.normEps)
                block.ffIn(ffHidden.pointer, normed.pointer, rows: rows, items: batch, epilogue: .geluTanh)   // GELU-tanh
                block.ffOut(projected.pointer, ffHidden.pointer, rows: rows, items: batch)
                addGated(hidden.pointer, gate: m + 5 * e, gateStride: stride, projected.pointer, batch: batch, tokens: n, features: e)
            }
        }

        // 4. Output head: LN(1e-6)·(1 + scale) + shift with the embedded timestep, proj_out, unpatchify  [B, Co, H, W]
        return outputHead(hidden.pointer, embedded: cond.embedded, batch: batch, gridHeight: gh, gridWidth: gw,
                          normed: normed.pointer)
    }
}

/// BasicTransformerBlock with `norm_type="ada_norm_single"` (attention.py:752-1080).
struct PixArtBlock: Sendable {
    let attn1: AttentionLayer          // self-attention, bias = attention_bias
    let attn2: AttentionLayer          // cross-attention to the caption
    let ffIn: LinearLayer              // ff.net.0.proj [4E, E]
    let ffOut: LinearLayer             // ff.net.2 [E, 4E]
    let scaleShiftTable: WeightView    // scale_shift_table [6, E]
    let normEps: Float

    init(_ store: WeightStore, _ prefix: String, config: PixArtTransformer2DModel.Config, crossDim: Int) throws {
        let e = config.innerDim
        attn1 = try AttentionLayer(store, prefix + ".attn1", queryDim: e, keyDim: e, heads: config.numAttentionHeads,
                                   headDim: config.attentionHeadDim, bias: config.attentionBias, qkNorm: nil)
        attn2 = try AttentionLayer(store, prefix + ".attn2", queryDim: e, keyDim: crossDim,
                                   heads: config.numAttentionHeads, headDim: config.attentionHeadDim, bias: config.attentionBias,
                                   qkNorm: nil)
        ffIn = try LinearLayer(store, prefix + ".ff.net.0.proj", in: e, out: 4 * e)
        ffOut = try LinearLayer(store, prefix + ".ff.net.2", in: 4 * e, out: e)
        scaleShiftTable = try loadWeight(store, prefix + ".scale_shift_table", shape: [6, e])
        normEps = Float(config.normEps)
    }
}
