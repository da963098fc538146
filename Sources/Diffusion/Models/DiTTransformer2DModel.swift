import Core
import Foundation
import Tensor
import Weights

/// DiT, class-conditional transformer with AdaLN-zero blocks (diffusers
/// models/transformers/dit_transformer_2d.py; docs/engine.md §2). Works on latents (C = 4, learned sigma
/// Co = 8) or directly on pixels, on any grid of whole patches (non-square too: the sin-cos table is
/// recomputed for the runtime grid and the output is unpatchified with the runtime h and w).
public final class DiTTransformer2DModel: Denoiser {
    /// `config.json` of the transformer: every `__init__` argument, with the class defaults
    /// (dit_transformer_2d.py:72-90) for keys the file lacks. Unknown keys are ignored.
    public struct Config: Decodable, Sendable, Equatable {
        public var numAttentionHeads = 16
        public var attentionHeadDim = 72
        public var inChannels = 4
        public var outChannels: Int? = nil
        public var numLayers = 28
        public var dropout = 0.0
        public var normNumGroups = 32
        public var attentionBias = true
        public var sampleSize = 32
        public var patchSize = 2
        public var activationFn = "gelu-approximate"
        public var numEmbedsAdaNorm = 1000
        public var upcastAttention = false
        public var normType = "ada_norm_zero"
        public var normElementwiseAffine = false
        public var normEps = 1e-5

        public init() {}

        enum CodingKeys: String, CodingKey {
            case numAttentionHeads = "num_attention_heads", attentionHeadDim = "attention_head_dim"
            case inChannels = "in_channels", outChannels = "out_channels", numLayers = "num_layers", dropout
            case normNumGroups = "norm_num_groups", attentionBias = "attention_bias", sampleSize = "sample_size"
            case patchSize = "patch_size", activationFn = "activation_fn", numEmbedsAdaNorm = "num_embeds_ada_norm"
            case upcastAttention = "upcast_attention", normType = "norm_type"
            case normElementwiseAffine = "norm_elementwise_affine", normEps = "norm_eps"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numAttentionHeads = try c.value(.numAttentionHeads, default: numAttentionHeads)
            attentionHeadDim = try c.value(.attentionHeadDim, default: attentionHeadDim)
            inChannels = try c.value(.inChannels, default: inChannels)
            outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels)
            numLayers = try c.value(.numLayers, default: numLayers)
            dropout = try c.value(.dropout, default: dropout)
            normNumGroups = try c.value(.normNumGroups, default: normNumGroups)
            attentionBias = try c.value(.attentionBias, default: attentionBias)
            sampleSize = try c.value(.sampleSize, default: sampleSize)
            patchSize = try c.value(.patchSize, default: patchSize)
            activationFn = try c.value(.activationFn, default: activationFn)
            numEmbedsAdaNorm = try c.value(.numEmbedsAdaNorm, default: numEmbedsAdaNorm)
            upcastAttention = try c.value(.upcastAttention, default: upcastAttention)
            normType = try c.value(.normType, default: normType)
            normElementwiseAffine = try c.value(.normElementwiseAffine, default: normElementwiseAffine)
            normEps = try c.value(.normEps, default: normEps)
        }

        /// Transformer width E = heads · head dim.
        public var innerDim: Int { numAttentionHeads * attentionHeadDim }
        /// out_channels, or in_channels when absent.
        public var resolvedOutChannels: Int { outChannels ?? inChannels }
    }

    public let config: Config
    let patchEmbed: LinearLayer            // pos_embed.proj, Conv2d(C, E, p, p) seen as [E, C·p·p]
    let blocks: [DiTBlock]
    let projOut1: LinearLayer              // [2E, E]
    let projOut2: LinearLayer              // [p·p·Co, E]
    private let positionTables = PositionTableCache()

    public var inChannels: Int { config.inChannels }
    public var outChannels: Int { config.resolvedOutChannels }
    public var patchSize: Int { config.patchSize }
    public var nullClass: Int { config.numEmbedsAdaNorm }

    public init(config: Config, weights: WeightStore) throws {
        let e = config.innerDim, p = config.patchSize, c = config.inChannels
        guard config.normType == "ada_norm_zero" else {
            throw ModelError(.unsupportedConfig, "DiT norm_type \"\(config.normType)\" is not supported (only ada_norm_zero)")
        }
        guard config.activationFn == "gelu-approximate" else {
            throw ModelError(.unsupportedConfig, "DiT activation_fn \"\(config.activationFn)\" is not supported (only gelu-approximate)")
        }
        guard !config.normElementwiseAffine else {
            throw ModelError(.unsupportedConfig, "DiT with norm_elementwise_affine true is not supported")
        }
        guard config.attentionBias else {
            throw ModelError(.unsupportedConfig, "DiT without attention_bias is not supported")
        }
        guard config.numAttentionHeads > 0, config.attentionHeadDim > 0, e % 4 == 0, p > 0, c > 0,
              config.resolvedOutChannels > 0, config.numLayers >= 1, config.sampleSize >= p, config.numEmbedsAdaNorm >= 0 else {
            throw ModelError(.unsupportedConfig,
                             "DiT config is inconsistent: width \(e) must be a positive multiple of 4, patch and channels positive, at least one layer, sample_size ≥ patch_size")
        }
        self.config = config
        patchEmbed = try LinearLayer(weights, "pos_embed.proj", in: c * p * p, out: e, conv: (c, p))
        blocks = try (0..<config.numLayers).map { try DiTBlock(weights, layer: $0, config: config) }
        projOut1 = try LinearLayer(weights, "proj_out_1", in: e, out: 2 * e)
        projOut2 = try LinearLayer(weights, "proj_out_2", in: e, out: p * p * config.resolvedOutChannels)
    }

    // x: [B, C, H, W], timesteps: [B], labels: [B] (num_embeds_ada_norm = the null class) -> [B, Co, H, W]
    public func forward(_ x: Tensor, timesteps: [Float], labels: [Int]) throws -> Tensor {
        let p = config.patchSize, c = config.inChannels, co = outChannels
        let e = config.innerDim, heads = config.numAttentionHeads, headDim = config.attentionHeadDim
        guard x.isImageBatch(channels: c, multiple: p) else {
            throw ModelError(.badInput, "DiT input must be [B, \(c), H, W] with H and W multiples of \(p), got \(x.shape)")
        }
        let batch = x.shape[0], height = x.shape[2], width = x.shape[3]
        guard timesteps.count == batch, labels.count == batch else {
            throw ModelError(.badInput, "DiT got \(timesteps.count) timesteps and \(labels.count) labels for a batch of \(batch)")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 > config.numEmbedsAdaNorm }) {
            throw ModelError(.badInput, "class label \(bad) is outside 0...\(config.numEmbedsAdaNorm) (\(config.numEmbedsAdaNorm) = null class)")
        }
        let gh = height / p, gw = width / p, n = gh * gw, rows = batch * n
        let pos = positionTables.table(embedDim: e, gridHeight: gh, gridWidth: gw, baseSize: config.sampleSize / p)
        let temb = timestepEmbedding(timesteps)                          // [B, 256]

        // Activations for this forward.
        let hidden = FloatBuffer(count: rows * e)                       // x      [B, N, E]
        let normed = FloatBuffer(count: rows * max(e, c * p * p))      // n, and the patches at first
        let outTokens = FloatBuffer(count: rows * p * p * co)            // [B, N, p·p·Co]
        let q = FloatBuffer(count: rows * e), k = FloatBuffer(count: rows * e), v = FloatBuffer(count: rows * e)
        let attended = FloatBuffer(count: rows * e)
        let ffHidden = FloatBuffer(count: rows * 4 * e)                 // [B, N, 4E]
        let scoresCount = min(heads * n * n, max(n, 1 << 24))
        let scores = FloatBuffer(count: scoresCount)
        let cond = FloatBuffer(count: batch * e), cond0 = FloatBuffer(count: batch * e)
        let condScratch = FloatBuffer(count: batch * e)
        let mod = FloatBuffer(count: batch * 6 * e)                     // [B, 6E]

        // Every linear runs one sgemm per batch item (`items: batch`): a row's bits then do not depend on its
        // batch-mates (OpenBLAS's kernels for an M-row call differ with M), so a job gets its solo image.
        // Patch embedding + positions: x = proj(patches) + pos           [B, N, E]
        x.data.withUnsafeBufferPointer { xp in
            patchify(normed.pointer, xp.baseAddress!, batch: batch, channels: c, height: height, width: width, patch: p)
        }
        patchEmbed(hidden.pointer, normed.pointer, rows: rows, items: batch)
        addBroadcast(hidden.pointer, pos, batch: batch, count: n * e)

        for (l, block) in blocks.enumerated() {
            // c_l = te + ce from block l's own embedder; mod = norm1.linear(SiLU(c_l))   [B, 6E]
            block.embedder.condition(cond.pointer, temb: temb, labels: labels, scratch: condScratch.pointer)
            if l == 0 { cond0.pointer.update(from: cond.pointer, count: batch * e) }
            silu(condScratch.pointer, cond.pointer, count: batch * e)
            block.adaLinear(mod.pointer, condScratch.pointer, rows: batch, items: batch)
            let shiftMSA = mod.pointer, scaleMSA = mod.pointer + e, gateMSA = mod.pointer + 2 * e
            let shiftMLP = mod.pointer + 3 * e, scaleMLP = mod.pointer + 4 * e, gateMLP = mod.pointer + 5 * e

            // n = LN(x, 1e-6)·(1 + scale_msa) + shift_msa;  x = gate_msa·Attn(n) + x
            layerNormModulate(normed.pointer, hidden.pointer, shift: shiftMSA, scale: scaleMSA, modStride: 6 * e,
                              batch: batch, tokens: n, features: e, eps: 1e-6)
            block.toQ(q.pointer, normed.pointer, rows: rows, items: batch)
            block.toK(k.pointer, normed.pointer, rows: rows, items: batch)
            block.toV(v.pointer, normed.pointer, rows: rows, items: batch)
            attention(attended.pointer, ldo: e, q: q.pointer, ldq: e, k: k.pointer, ldk: e, v: v.pointer, ldv: e,
                      batch: batch, queryTokens: n, keyTokens: n, heads: heads, headDim: headDim,
                      scratch: scores.pointer, scratchCount: scoresCount)
            block.toOut(normed.pointer, attended.pointer, rows: rows, items: batch)
            addGated(hidden.pointer, gate: gateMSA, gateStride: 6 * e, normed.pointer, batch: batch, tokens: n, features: e)

            // n = LN(x, norm_eps)·(1 + scale_mlp) + shift_mlp;  x = gate_mlp·FF(n) + x
            layerNormModulate(normed.pointer, hidden.pointer, shift: shiftMLP, scale: scaleMLP, modStride: 6 * e,
                              batch: batch, tokens: n, features: e, eps: Float(config.normEps))
            block.ffIn(ffHidden.pointer, normed.pointer, rows: rows, items: batch)
            geluTanh(ffHidden.pointer, ffHidden.pointer, count: rows * 4 * e)
            block.ffOut(q.pointer, ffHidden.pointer, rows: rows, items: batch)
            addGated(hidden.pointer, gate: gateMLP, gateStride: 6 * e, q.pointer, batch: batch, tokens: n, features: e)
        }

        // Output head with block 0's conditioning: shift, scale = proj_out_1(SiLU(c_0))   [B, 2E]
        silu(condScratch.pointer, cond0.pointer, count: batch * e)
        projOut1(mod.pointer, condScratch.pointer, rows: batch, items: batch)
        layerNormModulate(normed.pointer, hidden.pointer, shift: mod.pointer, scale: mod.pointer + e, modStride: 2 * e,
                          batch: batch, tokens: n, features: e, eps: 1e-6)
        projOut2(outTokens.pointer, normed.pointer, rows: rows, items: batch)
        // unpatchify with the runtime grid                                [B, Co, h·p, w·p]
        var out = Tensor(uninitializedShape: [batch, co, height, width])
        out.data.withUnsafeMutableBufferPointer { op in
            unpatchify(op.baseAddress!, outTokens.pointer, batch: batch, channels: co, gridHeight: gh, gridWidth: gw, patch: p)
        }
        return out
    }
}

/// One BasicTransformerBlock with norm_type "ada_norm_zero" (attention.py:752-1080): its own
/// CombinedTimestepLabelEmbeddings, the AdaLN linear, self-attention and the GELU-tanh feed-forward.
struct DiTBlock: Sendable {
    let embedder: TimestepLabelEmbedder    // norm1.emb
    let adaLinear: LinearLayer             // norm1.linear [6E, E]
    let toQ, toK, toV, toOut: LinearLayer  // attn1.to_q/k/v, attn1.to_out.0 [E, E]
    let ffIn: LinearLayer                  // ff.net.0.proj [4E, E]
    let ffOut: LinearLayer                 // ff.net.2 [E, 4E]

    init(_ store: WeightStore, layer: Int, config: DiTTransformer2DModel.Config) throws {
        let prefix = "transformer_blocks.\(layer).", e = config.innerDim
        embedder = try TimestepLabelEmbedder(store, prefix + "norm1.emb", width: e, classes: config.numEmbedsAdaNorm)
        adaLinear = try LinearLayer(store, prefix + "norm1.linear", in: e, out: 6 * e)
        toQ = try LinearLayer(store, prefix + "attn1.to_q", in: e, out: e)
        toK = try LinearLayer(store, prefix + "attn1.to_k", in: e, out: e)
        toV = try LinearLayer(store, prefix + "attn1.to_v", in: e, out: e)
        toOut = try LinearLayer(store, prefix + "attn1.to_out.0", in: e, out: e)
        ffIn = try LinearLayer(store, prefix + "ff.net.0.proj", in: e, out: 4 * e)
        ffOut = try LinearLayer(store, prefix + "ff.net.2", in: 4 * e, out: e)
    }
}

/// CombinedTimestepLabelEmbeddings (embeddings.py:1331-1347): `c = linear_2(SiLU(linear_1(temb))) + table[label]`.
struct TimestepLabelEmbedder: Sendable {
    let linear1: LinearLayer   // timestep_embedder.linear_1 [E, 256]
    let linear2: LinearLayer   // timestep_embedder.linear_2 [E, E]
    let table: WeightView      // class_embedder.embedding_table [classes + 1, E] (last row = null class)
    let width: Int

    init(_ store: WeightStore, _ prefix: String, width e: Int, classes: Int) throws {
        width = e
        linear1 = try LinearLayer(store, prefix + ".timestep_embedder.linear_1", in: 256, out: e)
        linear2 = try LinearLayer(store, prefix + ".timestep_embedder.linear_2", in: e, out: e)
        table = try loadWeight(store, prefix + ".class_embedder.embedding_table.weight", shape: [classes + 1, e])
    }

    // temb: [B, 256], labels: [B] -> c: [B, E];  scratch: [B, E]
    func condition(_ c: UnsafeMutablePointer<Float>, temb: [Float], labels: [Int], scratch: UnsafeMutablePointer<Float>) {
        let batch = labels.count, e = width
        temb.withUnsafeBufferPointer { linear1(scratch, $0.baseAddress!, rows: batch, items: batch) }
        silu(scratch, scratch, count: batch * e)
        linear2(c, scratch, rows: batch, items: batch)
        for (b, label) in labels.enumerated() {
            let row = table.pointer + label * e
            for j in 0..<e { c[b * e + j] += row[j] }
        }
    }
}

/// Sin-cos tables by runtime grid, computed once per (h, w) and shared by all forwards.
final class PositionTableCache: Sendable {
    private let tables = Locked<[[Int]: [Float]]>([:])

    func table(embedDim: Int, gridHeight: Int, gridWidth: Int, baseSize: Int, interpolationScale: Double = 1) -> [Float] {
        let key = [embedDim, gridHeight, gridWidth, baseSize, Int(truncatingIfNeeded: interpolationScale.bitPattern)]
        return tables.withLock { tables in
            if let t = tables[key] { return t }
            let t = sinCosPositionEmbedding(embedDim: embedDim, gridHeight: gridHeight, gridWidth: gridWidth, baseSize: baseSize,
                                            interpolationScale: interpolationScale)
            if tables.count > 16 { tables.removeAll() }
            tables[key] = t
            return t
        }
    }
}

extension LinearLayer {
    /// A Conv2d(C, E, k = p, stride = p) patch projection read as a linear layer on patches in (c, ky, kx) order.
    init(_ store: WeightStore, _ prefix: String, in inFeatures: Int, out outFeatures: Int, conv: (channels: Int, patch: Int)) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try loadMatrix(store, prefix + ".weight", shape: [outFeatures, conv.channels, conv.patch, conv.patch])
        bias = try loadWeight(store, prefix + ".bias", shape: [outFeatures])
    }
}
