import Foundation
import Tensor
import Weights

/// Sana's linear DiT (diffusers models/transformers/sana_transformer.py, 0.42.1): patch embedding (with a sin-cos
/// table only when `interpolation_scale` is set), adaLN-single timestep conditioning (or Sprint's timestep +
/// guidance embedding), and per block ReLU linear self-attention, masked softmax cross-attention to the projected,
/// RMS-normalised caption, and the GLUMBConv Mix-FFN. Any grid of whole patches, non-square too.
///
/// `timestep_scale` and `guidance_embeds_scale` are read here but applied by the pipelines, as in diffusers
/// (pipeline_sana.py:914 multiplies the timestep by `timestep_scale`; pipeline_sana_sprint.py multiplies the
/// guidance by `guidance_embeds_scale`).
public final class SanaTransformer2DModel: Sendable {
    /// `config.json`: every `__init__` argument (sana_transformer.py:342-365), class defaults for missing keys.
    public struct Config: Decodable, Sendable, Equatable {
        public var inChannels = 32
        public var outChannels: Int? = 32
        public var numAttentionHeads = 70
        public var attentionHeadDim = 32
        public var numLayers = 20
        public var numCrossAttentionHeads: Int? = 20
        public var crossAttentionHeadDim: Int? = 112
        public var crossAttentionDim: Int? = 2240
        public var captionChannels = 2304
        public var mlpRatio = 2.5
        public var attentionBias = false
        public var sampleSize = 32
        public var patchSize = 1
        public var normElementwiseAffine = false
        public var normEps = 1e-6
        public var interpolationScale: Double? = nil
        public var guidanceEmbeds = false
        public var guidanceEmbedsScale = 0.1
        public var qkNorm: String? = nil
        public var timestepScale = 1.0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case inChannels = "in_channels", outChannels = "out_channels", numAttentionHeads = "num_attention_heads"
            case attentionHeadDim = "attention_head_dim", numLayers = "num_layers"
            case numCrossAttentionHeads = "num_cross_attention_heads", crossAttentionHeadDim = "cross_attention_head_dim"
            case crossAttentionDim = "cross_attention_dim", captionChannels = "caption_channels", mlpRatio = "mlp_ratio"
            case attentionBias = "attention_bias", sampleSize = "sample_size", patchSize = "patch_size"
            case normElementwiseAffine = "norm_elementwise_affine", normEps = "norm_eps"
            case interpolationScale = "interpolation_scale", guidanceEmbeds = "guidance_embeds"
            case guidanceEmbedsScale = "guidance_embeds_scale", qkNorm = "qk_norm", timestepScale = "timestep_scale"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            inChannels = try c.value(.inChannels, default: inChannels)
            outChannels = try c.nullable(.outChannels, default: outChannels)
            numAttentionHeads = try c.value(.numAttentionHeads, default: numAttentionHeads)
            attentionHeadDim = try c.value(.attentionHeadDim, default: attentionHeadDim)
            numLayers = try c.value(.numLayers, default: numLayers)
            numCrossAttentionHeads = try c.nullable(.numCrossAttentionHeads, default: numCrossAttentionHeads)
            crossAttentionHeadDim = try c.nullable(.crossAttentionHeadDim, default: crossAttentionHeadDim)
            crossAttentionDim = try c.nullable(.crossAttentionDim, default: crossAttentionDim)
            captionChannels = try c.value(.captionChannels, default: captionChannels)
            mlpRatio = try c.value(.mlpRatio, default: mlpRatio)
            attentionBias = try c.value(.attentionBias, default: attentionBias)
            sampleSize = try c.value(.sampleSize, default: sampleSize)
            patchSize = try c.value(.patchSize, default: patchSize)
            normElementwiseAffine = try c.value(.normElementwiseAffine, default: normElementwiseAffine)
            normEps = try c.value(.normEps, default: normEps)
            interpolationScale = try c.nullable(.interpolationScale, default: interpolationScale)
            guidanceEmbeds = try c.value(.guidanceEmbeds, default: guidanceEmbeds)
            guidanceEmbedsScale = try c.value(.guidanceEmbedsScale, default: guidanceEmbedsScale)
            qkNorm = try c.nullable(.qkNorm, default: qkNorm)
            timestepScale = try c.value(.timestepScale, default: timestepScale)
        }

        /// Transformer width E = heads · head dim.
        public var innerDim: Int { numAttentionHeads * attentionHeadDim }
        /// out_channels, or in_channels when absent (sana_transformer.py:368).
        public var resolvedOutChannels: Int { outChannels ?? inChannels }
    }

    public let config: Config
    let patchEmbed: LinearLayer              // patch_embed.proj, Conv2d(C, E, p, p) as [E, C·p·p]
    let timeEmbed: SanaTimeEmbed
    let captionProjection: CaptionProjection // caption_projection
    let captionNorm: WeightView              // caption_norm.weight [E], RMSNorm eps 1e-5
    let blocks: [SanaTransformerBlock]
    let outputHead: ModulatedOutputHead      // scale_shift_table [2, E], proj_out [p·p·Co, E]
    private let positionTables = PositionTableCache()

    public var inChannels: Int { config.inChannels }
    public var outChannels: Int { config.resolvedOutChannels }
    public var patchSize: Int { config.patchSize }
    public var captionChannels: Int { config.captionChannels }

    public init(config: Config, weights: WeightStore) throws {
        let e = config.innerDim, p = config.patchSize, c = config.inChannels
        guard config.numAttentionHeads > 0, config.attentionHeadDim > 0, p > 0, c > 0, config.resolvedOutChannels > 0,
              config.numLayers >= 1, config.captionChannels > 0, config.mlpRatio > 0, e % 4 == 0 || config.interpolationScale == nil else {
            throw ModelError(.unsupportedConfig, "SanaTransformer2DModel config is inconsistent: heads, head dim, patch size, channels, caption_channels and mlp_ratio must be positive, at least one layer (and a width divisible by 4 with a positional table)")
        }
        guard let crossDim = config.crossAttentionDim, let crossHeads = config.numCrossAttentionHeads,
              let crossHeadDim = config.crossAttentionHeadDim, crossHeads > 0, crossHeadDim > 0 else {
            throw ModelError(.unsupportedConfig, "SanaTransformer2DModel without cross-attention (cross_attention_dim, num_cross_attention_heads, cross_attention_head_dim) is not supported")
        }
        guard crossDim == e else {
            throw ModelError(.unsupportedConfig, "SanaTransformer2DModel cross_attention_dim \(crossDim) must equal the width \(e) (the projected caption)")
        }
        guard !config.normElementwiseAffine else {
            throw ModelError(.unsupportedConfig, "SanaTransformer2DModel with norm_elementwise_affine true is not supported")
        }
        self.config = config
        patchEmbed = try LinearLayer(weights, "patch_embed.proj", in: c * p * p, out: e, conv: (c, p))
        timeEmbed = config.guidanceEmbeds
            ? .guidance(try TimestepGuidanceEmbedding(weights, "time_embed", width: e))
            : .single(try AdaLayerNormSingle(weights, "time_embed", width: e, additionalConditions: false))
        captionProjection = try CaptionProjection(weights, "caption_projection", captionChannels: config.captionChannels, width: e)
        captionNorm = try loadWeight(weights, "caption_norm.weight", shape: [e])
        blocks = try (0..<config.numLayers).map { l in
            try SanaTransformerBlock(weights, "transformer_blocks.\(l)", config: config, crossHeads: crossHeads, crossHeadDim: crossHeadDim)
        }
        outputHead = try ModulatedOutputHead(weights, width: e, patch: p, outChannels: config.resolvedOutChannels)
    }

    /// `transformer(x, encoder_hidden_states, timestep, guidance, encoder_attention_mask).sample`
    /// (sana_transformer.py:420-551). `encoderMask` holds 1 (keep) or 0 per caption token; nil keeps all.
    /// `guidance` is required exactly when the config has `guidance_embeds` (already times `guidance_embeds_scale`).
    // x: [B, C, H, W], timesteps: [B], caption: [B, L, caption_channels], mask: [B, L]?, guidance: [B]? -> [B, Co, H, W]
    public func forward(_ x: Tensor, timesteps: [Float], caption: Tensor, captionMask: [Float]?, guidance: [Float]? = nil) throws -> Tensor {
        let p = config.patchSize, c = config.inChannels, e = config.innerDim
        guard x.isImageBatch(channels: c, multiple: p) else {
            throw ModelError(.badInput, "Sana input must be [B, \(c), H, W] with H and W multiples of \(p), got \(x.shape)")
        }
        let batch = x.shape[0], height = x.shape[2], width = x.shape[3]
        guard caption.shape.count == 3, caption.shape[0] == batch, caption.shape[1] > 0, caption.shape[2] == config.captionChannels else {
            throw ModelError(.badInput, "Sana caption embeddings must be [\(batch), L, \(config.captionChannels)], got \(caption.shape)")
        }
        let l = caption.shape[1]
        guard timesteps.count == batch else {
            throw ModelError(.badInput, "Sana got \(timesteps.count) timesteps for a batch of \(batch)")
        }
        if let captionMask, captionMask.count != batch * l {
            throw ModelError(.badInput, "Sana caption mask has \(captionMask.count) values, expected \(batch) × \(l)")
        }
        switch (config.guidanceEmbeds, guidance) {
        case (true, nil):
            throw ModelError(.badInput, "this Sana transformer has guidance_embeds: a guidance value per item is required")
        case (false, _?):
            throw ModelError(.badInput, "this Sana transformer has no guidance embedding (guidance_embeds is false)")
        case (true, let g?) where g.count != batch:
            throw ModelError(.badInput, "Sana got \(g.count) guidance values for a batch of \(batch)")
        default:
            break
        }

        let gh = height / p, gw = width / p, n = gh * gw, rows = batch * n
        let keys = CaptionKeys(mask: captionMask, batch: batch, tokens: l)
        let ws = SanaWorkspace(config: config, blocks: blocks, batch: batch, tokens: n, captionTokens: l)

        // 1. Patch embedding (+ sin-cos table when interpolation_scale is set)       [B, N, E]
        x.data.withUnsafeBufferPointer { xp in
            patchify(ws.patches.pointer, xp.baseAddress!, batch: batch, channels: c, height: height, width: width, patch: p)
        }
        patchEmbed(ws.hidden.pointer, ws.patches.pointer, rows: rows, items: batch)
        if let scale = config.interpolationScale {
            let pos = positionTables.table(embedDim: e, gridHeight: gh, gridWidth: gw, baseSize: config.sampleSize / p,
                                           interpolationScale: scale)
            addBroadcast(ws.hidden.pointer, pos, batch: batch, count: n * e)
        }

        // 2. Timestep (+ guidance) conditioning: modulation [B, 6E], embedded timestep [B, E]
        let cond: TimestepConditioning
        switch timeEmbed {
        case .single(let adaLN): cond = adaLN(timesteps, resolution: nil, aspectRatio: nil)
        case .guidance(let embed): cond = embed(timesteps, guidance: guidance ?? [])
        }

        // Caption: caption_norm(caption_projection(caption)) on each item's kept rows   [ΣLb, E]
        let cc = config.captionChannels
        caption.data.withUnsafeBufferPointer { cp in
            for item in 0..<batch {
                for (r, token) in keys.tokens[item].enumerated() {
                    (ws.captionRows.pointer + (keys.offsets[item] + r) * cc).update(from: cp.baseAddress! + (item * l + token) * cc, count: cc)
                }
            }
        }
        for item in 0..<batch {
            let off = keys.offsets[item]
            captionProjection(ws.context.pointer + off * e, ws.captionRows.pointer + off * cc, rows: keys.tokens[item].count,
                              items: 1, scratch: ws.contextScratch.pointer)
        }
        rmsNorm(ws.context.pointer, ws.context.pointer, weight: captionNorm.pointer, rows: keys.total, features: e, eps: 1e-5, offset: 0)

        // 3. Blocks
        for block in blocks {
            block(ws, modulation: cond.modulation, keys: keys, gridHeight: gh, gridWidth: gw)
        }

        // 4. Output head: LN(1e-6)·(1 + scale) + shift with the embedded timestep, proj_out, unpatchify  [B, Co, H, W]
        return outputHead(ws.hidden.pointer, embedded: cond.embedded, batch: batch, gridHeight: gh, gridWidth: gw,
                          normed: ws.normed.pointer)
    }
}

/// Sana's timestep conditioning: adaLN-single, or Sprint's timestep + guidance embedding.
enum SanaTimeEmbed: Sendable {
    case single(AdaLayerNormSingle)
    case guidance(TimestepGuidanceEmbedding)
}

/// The caption rows each item's cross-attention reads. diffusers turns the mask into a key bias `(1 − mask)·−10000`
/// (sana_transformer.py:464-467); a masked key's softmax weight is then exp(s − 10000 − max) = 0 exactly in float32,
/// so an item needs only its kept rows: they alone are projected (caption projection, to_k, to_v) and attended,
/// which is the same function with fewer products. An item that masks every token keeps all of them with the
/// bias (torch then weighs them all).
struct CaptionKeys {
    let tokens: [[Int]]       // per item, the caption positions read
    let biased: [Bool]        // per item, whether its rows carry the −10000 bias (every token masked)
    let offsets: [Int]        // per item, its first row in the compacted caption buffers
    let total: Int
    let allMasked: [Float]    // [L] of −10000, the bias of a fully masked item

    // mask: [B, L]? (1 keep, 0 discard)
    init(mask: [Float]?, batch: Int, tokens l: Int) {
        var tokens: [[Int]] = [], biased: [Bool] = [], offsets: [Int] = [], total = 0
        for item in 0..<batch {
            var kept = (0..<l).filter { token in mask.map { $0[item * l + token] != 0 } ?? true }
            let none = kept.isEmpty
            if none { kept = Array(0..<l) }
            tokens.append(kept)
            biased.append(none)
            offsets.append(total)
            total += kept.count
        }
        self.tokens = tokens
        self.biased = biased
        self.offsets = offsets
        self.total = total
        allMasked = [Float](repeating: -10000, count: l)
    }
}

/// Activations of one Sana forward.
final class SanaWorkspace {
    let hidden, normed, patches: FloatBuffer
    let q, k, v, attended, projected: FloatBuffer
    let captionRows, context, contextScratch, crossK, crossV, crossQ, crossAttended: FloatBuffer
    let ffScratch: FloatBuffer
    let linearScratch, scores: FloatBuffer
    let modulation: FloatBuffer
    let batch, tokens, captionTokens, width: Int

    init(config: SanaTransformer2DModel.Config, blocks: [SanaTransformerBlock], batch: Int, tokens n: Int, captionTokens l: Int) {
        let e = config.innerDim, p = config.patchSize, rows = batch * n
        let crossInner = blocks.first?.attn2.inner ?? e
        self.batch = batch
        tokens = n
        captionTokens = l
        width = e
        hidden = FloatBuffer(count: rows * e)
        normed = FloatBuffer(count: rows * e)
        patches = FloatBuffer(count: rows * config.inChannels * p * p)
        q = FloatBuffer(count: rows * e)
        k = FloatBuffer(count: rows * e)
        v = FloatBuffer(count: rows * e)
        attended = FloatBuffer(count: rows * max(e, crossInner))
        projected = FloatBuffer(count: rows * e)
        captionRows = FloatBuffer(count: batch * l * config.captionChannels)
        context = FloatBuffer(count: batch * l * e)
        contextScratch = FloatBuffer(count: batch * l * e)
        crossQ = FloatBuffer(count: rows * crossInner)
        crossK = FloatBuffer(count: batch * l * crossInner)
        crossV = FloatBuffer(count: batch * l * crossInner)
        crossAttended = FloatBuffer(count: rows * crossInner)
        ffScratch = FloatBuffer(count: blocks.first.map { $0.ff.tokensScratchCount(batch: batch, spatial: n) } ?? 0)
        let d = config.attentionHeadDim
        let slots = max(1, min(batch * config.numAttentionHeads, kernelThreads * 4))
        linearScratch = FloatBuffer(count: slots * linearAttentionScratch(tokens: n, headDim: d))
        scores = FloatBuffer(count: blocks.first.map { $0.attn2.scoresCount(queryTokens: n, keyTokens: l) } ?? 1)
        modulation = FloatBuffer(count: batch * 6 * e)
    }
}

/// SanaTransformerBlock (sana_transformer.py:190-291).
struct SanaTransformerBlock: Sendable {
    let attn1: AttentionLayer          // linear self-attention (SanaLinearAttnProcessor2_0)
    let attn2: AttentionLayer          // cross-attention (SanaAttnProcessor2_0)
    let ff: GLUMBConv                  // ff, no norm, no residual
    let scaleShiftTable: WeightView    // scale_shift_table [6, E]
    let normEps: Float

    init(_ store: WeightStore, _ prefix: String, config: SanaTransformer2DModel.Config, crossHeads: Int, crossHeadDim: Int) throws {
        let e = config.innerDim
        attn1 = try AttentionLayer(store, prefix + ".attn1", queryDim: e, keyDim: e, heads: config.numAttentionHeads,
                                   headDim: config.attentionHeadDim, bias: config.attentionBias, qkNorm: config.qkNorm)
        attn2 = try AttentionLayer(store, prefix + ".attn2", queryDim: e, keyDim: e, heads: crossHeads,
                                   headDim: crossHeadDim, bias: true, qkNorm: config.qkNorm)
        ff = try GLUMBConv(store, prefix + ".ff", in: e, out: e, expandRatio: config.mlpRatio, rmsNorm: false)
        scaleShiftTable = try loadWeight(store, prefix + ".scale_shift_table", shape: [6, e])
        normEps = Float(config.normEps)
    }

    // ws.hidden: [B, N, E] updated in place; modulation: [B, 6E]; ws.context: [ΣLb, E] (keys' rows)
    func callAsFunction(_ ws: SanaWorkspace, modulation t6: [Float], keys: CaptionKeys, gridHeight: Int, gridWidth: Int) {
        let b = ws.batch, n = ws.tokens, e = ws.width, rows = b * n
        // 1. shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = scale_shift_table + t6   [B, 6E]
        let mod = ws.modulation.pointer, stride = 6 * e
        addScaleShiftTable(mod, table: scaleShiftTable, t6, batch: b, stride: stride)

        // 2. Self-attention: n = LN(x)·(1 + scale_msa) + shift_msa; x += gate_msa · to_out(linear_attn(n))
        layerNormModulate(ws.normed.pointer, ws.hidden.pointer, shift: mod, scale: mod + e, modStride: stride,
                          batch: b, tokens: n, features: e, eps: normEps)
        attn1.project(q: ws.q.pointer, k: ws.k.pointer, v: ws.v.pointer, x: ws.normed.pointer, queryRows: rows,
                      context: ws.normed.pointer, keyRows: rows, items: b)
        relu(ws.q.pointer, ws.q.pointer, count: rows * e)                // ReLU feature map on q and k
        relu(ws.k.pointer, ws.k.pointer, count: rows * e)
        linearAttention(ws.attended.pointer, ldo: e, q: ws.q.pointer, ldq: e, k: ws.k.pointer, ldk: e, v: ws.v.pointer, ldv: e,
                        inputHeadStride: attn1.headDim, batch: b, tokens: n, heads: attn1.heads, headDim: attn1.headDim,
                        eps: 1e-15, scratch: ws.linearScratch.pointer, scratchCount: ws.linearScratch.count)
        attn1.toOut(ws.projected.pointer, ws.attended.pointer, rows: rows, items: b)
        addGated(ws.hidden.pointer, gate: mod + 2 * e, gateStride: stride, ws.projected.pointer, batch: b, tokens: n, features: e)

        // 3. Cross-attention on x itself (no norm): x += to_out(SDPA(q(x), k(ctx), v(ctx), mask)), each item over
        //    its kept caption rows (CaptionKeys)
        let inner = attn2.inner
        attn2.projectQueries(ws.crossQ.pointer, x: ws.hidden.pointer, rows: rows, items: b)
        keys.allMasked.withUnsafeBufferPointer { allMasked in
            for item in 0..<b {
                let off = keys.offsets[item], count = keys.tokens[item].count
                let k = ws.crossK.pointer + off * inner, v = ws.crossV.pointer + off * inner
                attn2.projectKeys(k: k, v: v, context: ws.context.pointer + off * e, rows: count)
                attention(ws.crossAttended.pointer + item * n * inner, ldo: inner, q: ws.crossQ.pointer + item * n * inner,
                          ldq: inner, k: k, ldk: inner, v: v, ldv: inner, batch: 1, queryTokens: n, keyTokens: count,
                          heads: attn2.heads, headDim: attn2.headDim, keyBias: keys.biased[item] ? allMasked.baseAddress : nil,
                          scratch: ws.scores.pointer, scratchCount: ws.scores.count)
            }
        }
        attn2.toOut(ws.projected.pointer, ws.crossAttended.pointer, rows: rows, items: b)
        add(ws.hidden.pointer, ws.hidden.pointer, ws.projected.pointer, count: rows * e)

        // 4. Feed-forward: n = LN(x)·(1 + scale_mlp) + shift_mlp; x += gate_mlp · GLUMBConv(n as [B, E, h, w])
        //    (sana_transformer.py:277-289), run on the token rows channels last: no transposes
        layerNormModulate(ws.normed.pointer, ws.hidden.pointer, shift: mod + 3 * e, scale: mod + 4 * e, modStride: stride,
                          batch: b, tokens: n, features: e, eps: normEps)
        ff.tokens(ws.projected.pointer, ws.normed.pointer, batch: b, height: gridHeight, width: gridWidth,
                  scratch: ws.ffScratch.pointer)                                                 // [B, N, E]
        addGated(ws.hidden.pointer, gate: mod + 5 * e, gateStride: stride, ws.projected.pointer, batch: b, tokens: n, features: e)
    }
}
