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
        try forward(x, timesteps: timesteps, labels: labels, cache: [])
    }

    /// `cache`: images whose rows run block 0 and then, when FirstBlockCache says so, skip the other blocks
    /// (FirstBlockCache.swift); rows in no group always run every block. An empty `cache` is the plain forward.
    // x: [B, C, H, W], timesteps: [B], labels: [B] (num_embeds_ada_norm = the null class) -> [B, Co, H, W]
    public func forward(_ x: Tensor, timesteps: [Float], labels: [Int], cache: [FirstBlockCacheGroup]) throws -> Tensor {
        let p = config.patchSize, c = config.inChannels, co = outChannels, e = config.innerDim
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
        let cachedRows = cache.flatMap(\.rows)
        guard cachedRows.allSatisfy({ (0..<batch).contains($0) }), Set(cachedRows).count == cachedRows.count else {
            throw ModelError(.badInput, "cache groups name rows \(cachedRows), which must be distinct rows of a batch of \(batch)")
        }
        let gh = height / p, gw = width / p, n = gh * gw, rows = batch * n
        let pos = positionTables.table(embedDim: e, gridHeight: gh, gridWidth: gw, baseSize: config.sampleSize / p)
        let temb = timestepEmbedding(timesteps)                          // [B, 256]
        let a = Activations(config: config, batch: batch, tokens: n)

        // Every linear runs one sgemm per batch item (`items: batch`): a row's bits then do not depend on its
        // batch-mates (OpenBLAS's kernels for an M-row call differ with M), so a job gets its solo image, and a
        // batch of fewer rows (the rows that run every block while cached ones skip) gives the same bits.
        // Patch embedding + positions: x = proj(patches) + pos           [B, N, E]
        x.data.withUnsafeBufferPointer { xp in
            patchify(a.normed.pointer, xp.baseAddress!, batch: batch, channels: c, height: height, width: width, patch: p)
        }
        patchEmbed(a.hidden.pointer, a.normed.pointer, rows: rows, items: batch)
        addBroadcast(a.hidden.pointer, pos, batch: batch, count: n * e)

        if cache.isEmpty || blocks.count < 2 {
            runBlocks(0..<blocks.count, a, batch: batch, tokens: n, temb: temb, labels: labels)
        } else {
            try runBlocksCached(a, batch: batch, tokens: n, temb: temb, labels: labels, cache: cache)
        }

        // Output head with block 0's conditioning: shift, scale = proj_out_1(SiLU(c_0))   [B, 2E]
        silu(a.condScratch.pointer, a.cond0.pointer, count: batch * e)
        projOut1(a.mod.pointer, a.condScratch.pointer, rows: batch, items: batch)
        layerNormModulate(a.normed.pointer, a.hidden.pointer, shift: a.mod.pointer, scale: a.mod.pointer + e, modStride: 2 * e,
                          batch: batch, tokens: n, features: e, eps: 1e-6)
        projOut2(a.outTokens.pointer, a.normed.pointer, rows: rows, items: batch)
        // unpatchify with the runtime grid                                [B, Co, h·p, w·p]
        var out = Tensor(uninitializedShape: [batch, co, height, width])
        out.data.withUnsafeMutableBufferPointer { op in
            unpatchify(op.baseAddress!, a.outTokens.pointer, batch: batch, channels: co, gridHeight: gh, gridWidth: gw, patch: p)
        }
        return out
    }

    /// Activations for one forward of `batch` items of `tokens` tokens.
    struct Activations {
        let hidden: FloatBuffer                    // x      [B, N, E]
        let normed: FloatBuffer                    // n, and the patches at first
        let outTokens: FloatBuffer                 // [B, N, p·p·Co]
        let q, k, v, attended: FloatBuffer         // [B, N, E]
        let ffHidden: FloatBuffer                  // [B, N, 4E]
        let scores: FloatBuffer
        let scoresCount: Int
        let cond, cond0, condScratch: FloatBuffer  // [B, E]
        let mod: FloatBuffer                       // [B, 6E]

        init(config: Config, batch: Int, tokens n: Int) {
            let e = config.innerDim, p = config.patchSize, rows = batch * n
            hidden = FloatBuffer(count: rows * e)
            normed = FloatBuffer(count: rows * max(e, config.inChannels * p * p))
            outTokens = FloatBuffer(count: rows * p * p * config.resolvedOutChannels)
            q = FloatBuffer(count: rows * e); k = FloatBuffer(count: rows * e); v = FloatBuffer(count: rows * e)
            attended = FloatBuffer(count: rows * e)
            ffHidden = FloatBuffer(count: rows * 4 * e)
            scoresCount = min(config.numAttentionHeads * n * n, max(n, 1 << 24))
            scores = FloatBuffer(count: scoresCount)
            cond = FloatBuffer(count: batch * e); cond0 = FloatBuffer(count: batch * e)
            condScratch = FloatBuffer(count: batch * e)
            mod = FloatBuffer(count: batch * 6 * e)
        }
    }

    /// Blocks `range` on `a.hidden` in place (the first `batch` items); block 0 also leaves its conditioning in
    /// `a.cond0` for the output head.
    func runBlocks(_ range: Range<Int>, _ a: Activations, batch: Int, tokens n: Int, temb: [Float], labels: [Int]) {
        let e = config.innerDim, heads = config.numAttentionHeads, headDim = config.attentionHeadDim, rows = batch * n
        for l in range {
            let block = blocks[l]
            // c_l = te + ce from block l's own embedder; mod = norm1.linear(SiLU(c_l))   [B, 6E]
            block.embedder.condition(a.cond.pointer, temb: temb, labels: labels, scratch: a.condScratch.pointer)
            if l == 0 { a.cond0.pointer.update(from: a.cond.pointer, count: batch * e) }
            silu(a.condScratch.pointer, a.cond.pointer, count: batch * e)
            block.adaLinear(a.mod.pointer, a.condScratch.pointer, rows: batch, items: batch)
            let shiftMSA = a.mod.pointer, scaleMSA = a.mod.pointer + e, gateMSA = a.mod.pointer + 2 * e
            let shiftMLP = a.mod.pointer + 3 * e, scaleMLP = a.mod.pointer + 4 * e, gateMLP = a.mod.pointer + 5 * e

            // n = LN(x, 1e-6)·(1 + scale_msa) + shift_msa;  x = gate_msa·Attn(n) + x
            layerNormModulate(a.normed.pointer, a.hidden.pointer, shift: shiftMSA, scale: scaleMSA, modStride: 6 * e,
                              batch: batch, tokens: n, features: e, eps: 1e-6)
            block.toQ(a.q.pointer, a.normed.pointer, rows: rows, items: batch)
            block.toK(a.k.pointer, a.normed.pointer, rows: rows, items: batch)
            block.toV(a.v.pointer, a.normed.pointer, rows: rows, items: batch)
            attention(a.attended.pointer, ldo: e, q: a.q.pointer, ldq: e, k: a.k.pointer, ldk: e, v: a.v.pointer, ldv: e,
                      batch: batch, queryTokens: n, keyTokens: n, heads: heads, headDim: headDim,
                      scratch: a.scores.pointer, scratchCount: a.scoresCount)
            block.toOut(a.normed.pointer, a.attended.pointer, rows: rows, items: batch)
            addGated(a.hidden.pointer, gate: gateMSA, gateStride: 6 * e, a.normed.pointer, batch: batch, tokens: n, features: e)

            // n = LN(x, norm_eps)·(1 + scale_mlp) + shift_mlp;  x = gate_mlp·FF(n) + x
            layerNormModulate(a.normed.pointer, a.hidden.pointer, shift: shiftMLP, scale: scaleMLP, modStride: 6 * e,
                              batch: batch, tokens: n, features: e, eps: Float(config.normEps))
            block.ffIn(a.ffHidden.pointer, a.normed.pointer, rows: rows, items: batch)
            geluTanh(a.ffHidden.pointer, a.ffHidden.pointer, count: rows * 4 * e)
            block.ffOut(a.q.pointer, a.ffHidden.pointer, rows: rows, items: batch)
            addGated(a.hidden.pointer, gate: gateMLP, gateStride: 6 * e, a.q.pointer, batch: batch, tokens: n, features: e)
        }
    }

    /// FirstBlockCache (first_block_cache.py): block 0 on every row; then blocks 1… on the rows of uncached images
    /// and of cached images whose block-0 residual changed by more than their threshold; the other rows get
    /// block 0's output + their image's tail residual from its last full step.
    func runBlocksCached(_ a: Activations, batch: Int, tokens n: Int, temb: [Float], labels: [Int],
                         cache: [FirstBlockCacheGroup]) throws {
        let e = config.innerDim, rowSize = n * e
        let input = Array(UnsafeBufferPointer(start: a.hidden.pointer, count: batch * rowSize))   // x before block 0
        runBlocks(0..<1, a, batch: batch, tokens: n, temb: temb, labels: labels)
        let head = Array(UnsafeBufferPointer(start: a.hidden.pointer, count: batch * rowSize))    // block 0 output
        func gather(_ source: [Float], _ rows: [Int]) -> [Float] {
            rows.flatMap { source[($0 * rowSize)..<(($0 + 1) * rowSize)] }
        }

        // The decision per image over all its rows (both CFG halves).       r₀ = head − input   [R, N, E]
        var skipping: [FirstBlockCacheGroup] = []
        var computing: [(group: FirstBlockCacheGroup, r0: [Float])] = []
        for g in cache {
            let r0 = zip(gather(head, g.rows), gather(input, g.rows)).map { $0 - $1 }
            if r0.withUnsafeBufferPointer({ g.state.shouldCompute(headResidual: $0) }) {
                computing.append((g, r0))
            } else {
                guard g.state.tailResidual.count == r0.count else {
                    throw ModelError(.badInput, "a cached image's rows changed shape between steps (\(g.state.tailResidual.count) → \(r0.count) values)")
                }
                skipping.append(g)
            }
        }
        let skipped = Set(skipping.flatMap(\.rows))
        let run = (0..<batch).filter { !skipped.contains($0) }                      // rows through blocks 1…

        // Blocks 1… on the running rows, packed in order (per-item kernels: the same bits as in the full batch).
        if run.count == batch {
            runBlocks(1..<blocks.count, a, batch: batch, tokens: n, temb: temb, labels: labels)
        } else if !run.isEmpty {
            let packed = gather(head, run)
            packed.withUnsafeBufferPointer { a.hidden.pointer.update(from: $0.baseAddress!, count: packed.count) }
            let tembRow = temb.count / batch
            let runTemb = run.flatMap { temb[($0 * tembRow)..<(($0 + 1) * tembRow)] }
            runBlocks(1..<blocks.count, a, batch: run.count, tokens: n, temb: runTemb, labels: run.map { labels[$0] })
            let out = Array(UnsafeBufferPointer(start: a.hidden.pointer, count: run.count * rowSize))
            for (i, r) in run.enumerated() {                                    // back to row r
                out.withUnsafeBufferPointer { (a.hidden.pointer + r * rowSize).update(from: $0.baseAddress! + i * rowSize, count: rowSize) }
            }
        }
        let full = Array(UnsafeBufferPointer(start: a.hidden.pointer, count: batch * rowSize))

        // Computed images keep r₀ and the tail residual (last block output − block 0 output).
        for (g, r0) in computing {
            g.state.store(headResidual: r0, tailResidual: zip(gather(full, g.rows), gather(head, g.rows)).map { $0 - $1 })
        }
        // Skipped images: x = block 0 output + tail residual                 (first_block_cache.py:97-101)
        for g in skipping {
            for (j, r) in g.rows.enumerated() {
                for i in 0..<rowSize {
                    a.hidden.pointer[r * rowSize + i] = head[r * rowSize + i] + g.state.tailResidual[j * rowSize + i]
                }
            }
        }
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
    let table: WeightMatrix    // class_embedder.embedding_table [classes + 1, E] (last row = null class); 16-bit at bf16/fp16
    let width: Int

    init(_ store: WeightStore, _ prefix: String, width e: Int, classes: Int) throws {
        width = e
        linear1 = try LinearLayer(store, prefix + ".timestep_embedder.linear_1", in: 256, out: e)
        linear2 = try LinearLayer(store, prefix + ".timestep_embedder.linear_2", in: e, out: e)
        table = try loadMatrix(store, prefix + ".class_embedder.embedding_table.weight", shape: [classes + 1, e])
    }

    // temb: [B, 256], labels: [B] -> c: [B, E];  scratch: [B, E]
    func condition(_ c: UnsafeMutablePointer<Float>, temb: [Float], labels: [Int], scratch: UnsafeMutablePointer<Float>) {
        let batch = labels.count, e = width
        temb.withUnsafeBufferPointer { linear1(scratch, $0.baseAddress!, rows: batch, items: batch) }
        silu(scratch, scratch, count: batch * e)
        linear2(c, scratch, rows: batch, items: batch)
        for (b, label) in labels.enumerated() {
            let row = scratch + b * e     // the table's row as float32 (a 16-bit one widened, exactly)
            copyRow(row, table, row: label, columns: e)
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
