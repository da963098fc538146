import Tensor
import Weights

// The conditioning embedders shared by PixArt and Sana: adaLN-single (normalization.py:235-266) with its
// PixArt-α size/aspect-ratio embeddings (embeddings.py:1920-1954), Sana Sprint's timestep + guidance embedding
// (sana_transformer.py:99-121), and the caption projection (embeddings.py:1957-1983).

/// `TimestepEmbedding` (embeddings.py:1027-1072) on `Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)`:
/// `linear_2(SiLU(linear_1(sinusoid(t))))`. Each value is its own sgemm row set (batch-independent bits).
struct TimestepEmbeddingLayer: Sendable {
    let linear1: LinearLayer   // linear_1 [W, 256]
    let linear2: LinearLayer   // linear_2 [W, W]

    init(_ store: WeightStore, _ prefix: String, width: Int) throws {
        linear1 = try LinearLayer(store, prefix + ".linear_1", in: 256, out: width)
        linear2 = try LinearLayer(store, prefix + ".linear_2", in: width, out: width)
    }

    var width: Int { linear2.outFeatures }

    // values: [M] -> [M, W]
    func callAsFunction(_ values: [Float]) -> [Float] {
        let m = values.count, w = width
        let features = timestepEmbedding(values, dim: 256, flipSinToCos: true, downscaleFreqShift: 0)   // [M, 256]
        var hidden = [Float](repeating: 0, count: m * w), out = hidden
        features.withUnsafeBufferPointer { linear1(&hidden, $0.baseAddress!, rows: m, items: m) }
        hidden.withUnsafeMutableBufferPointer { silu($0.baseAddress!, $0.baseAddress!, count: m * w) }
        hidden.withUnsafeBufferPointer { linear2(&out, $0.baseAddress!, rows: m, items: m) }
        return out
    }
}

/// What adaLN-single gives a transformer: the `[B, 6E]` modulation every block adds to its own
/// `scale_shift_table`, and the `[B, E]` embedded timestep the output norm uses.
struct TimestepConditioning {
    var modulation: [Float]   // [B, 6E]
    var embedded: [Float]     // [B, E]
}

/// AdaLayerNormSingle (normalization.py:235-266): `emb = PixArtAlphaCombinedTimestepSizeEmbeddings(t, …)`,
/// `modulation = linear(SiLU(emb))`. With `use_additional_conditions` (PixArt-α), `emb` adds
/// `cat([resolution_embedder(h), resolution_embedder(w), aspect_ratio_embedder(ar)])`, each of width E/3
/// (embeddings.py:1941-1954).
struct AdaLayerNormSingle: Sendable {
    let timestepEmbedder: TimestepEmbeddingLayer        // emb.timestep_embedder
    let resolutionEmbedder: TimestepEmbeddingLayer?     // emb.resolution_embedder [E/3]
    let aspectRatioEmbedder: TimestepEmbeddingLayer?    // emb.aspect_ratio_embedder [E/3]
    let linear: LinearLayer                             // linear [6E, E]
    let width: Int

    init(_ store: WeightStore, _ prefix: String, width e: Int, additionalConditions: Bool) throws {
        width = e
        timestepEmbedder = try TimestepEmbeddingLayer(store, prefix + ".emb.timestep_embedder", width: e)
        if additionalConditions {
            guard e % 3 == 0 else {
                throw ModelError(.unsupportedConfig, "use_additional_conditions needs a width divisible by 3, got \(e)")
            }
            resolutionEmbedder = try TimestepEmbeddingLayer(store, prefix + ".emb.resolution_embedder", width: e / 3)
            aspectRatioEmbedder = try TimestepEmbeddingLayer(store, prefix + ".emb.aspect_ratio_embedder", width: e / 3)
        } else {
            resolutionEmbedder = nil
            aspectRatioEmbedder = nil
        }
        linear = try LinearLayer(store, prefix + ".linear", in: e, out: 6 * e)
    }

    // timesteps: [B], resolution: [B, 2] (h, w), aspectRatio: [B] -> modulation [B, 6E], embedded [B, E]
    func callAsFunction(_ timesteps: [Float], resolution: [Float]?, aspectRatio: [Float]?) -> TimestepConditioning {
        var emb = timestepEmbedder(timesteps)
        if let resolutionEmbedder, let aspectRatioEmbedder, let resolution, let aspectRatio {
            let third = width / 3
            let res = resolutionEmbedder(resolution)          // [2B, E/3] -> rows (b, h), (b, w)
            let ar = aspectRatioEmbedder(aspectRatio)         // [B, E/3]
            for b in 0..<timesteps.count {
                for j in 0..<third {
                    emb[b * width + j] += res[(2 * b) * third + j]
                    emb[b * width + third + j] += res[(2 * b + 1) * third + j]
                    emb[b * width + 2 * third + j] += ar[b * third + j]
                }
            }
        }
        return TimestepConditioning(modulation: modulation(linear, emb, rows: timesteps.count), embedded: emb)
    }
}

/// SanaCombinedTimestepGuidanceEmbeddings (sana_transformer.py:99-121), Sana Sprint: `emb = TE(t) + GE(guidance)`,
/// both on 256 sinusoidal features, `modulation = linear(SiLU(emb))`.
struct TimestepGuidanceEmbedding: Sendable {
    let timestepEmbedder: TimestepEmbeddingLayer   // timestep_embedder
    let guidanceEmbedder: TimestepEmbeddingLayer   // guidance_embedder
    let linear: LinearLayer                        // linear [6E, E]

    init(_ store: WeightStore, _ prefix: String, width e: Int) throws {
        timestepEmbedder = try TimestepEmbeddingLayer(store, prefix + ".timestep_embedder", width: e)
        guidanceEmbedder = try TimestepEmbeddingLayer(store, prefix + ".guidance_embedder", width: e)
        linear = try LinearLayer(store, prefix + ".linear", in: e, out: 6 * e)
    }

    // timesteps, guidance: [B] -> modulation [B, 6E], embedded [B, E]
    func callAsFunction(_ timesteps: [Float], guidance: [Float]) -> TimestepConditioning {
        var emb = timestepEmbedder(timesteps)
        let g = guidanceEmbedder(guidance)
        for i in emb.indices { emb[i] += g[i] }
        return TimestepConditioning(modulation: modulation(linear, emb, rows: timesteps.count), embedded: emb)
    }
}

/// `linear(SiLU(emb))`
// emb: [B, E] -> [B, 6E]
private func modulation(_ linear: LinearLayer, _ emb: [Float], rows: Int) -> [Float] {
    var act = emb
    act.withUnsafeMutableBufferPointer { silu($0.baseAddress!, $0.baseAddress!, count: $0.count) }
    var out = [Float](repeating: 0, count: rows * linear.outFeatures)
    act.withUnsafeBufferPointer { linear(&out, $0.baseAddress!, rows: rows, items: rows) }
    return out
}

/// PixArtAlphaTextProjection (embeddings.py:1957-1983): `linear_2(GELU_tanh(linear_1(caption)))`.
struct CaptionProjection: Sendable {
    let linear1: LinearLayer   // linear_1 [E, caption]
    let linear2: LinearLayer   // linear_2 [E, E]

    init(_ store: WeightStore, _ prefix: String, captionChannels: Int, width e: Int) throws {
        linear1 = try LinearLayer(store, prefix + ".linear_1", in: captionChannels, out: e)
        linear2 = try LinearLayer(store, prefix + ".linear_2", in: e, out: e)
    }

    // caption: [B, L, caption] -> y: [B, L, E];  scratch: [B·L, E]
    func callAsFunction(_ y: UnsafeMutablePointer<Float>, _ caption: UnsafePointer<Float>, rows: Int, items: Int,
                        scratch: UnsafeMutablePointer<Float>) {
        linear1(scratch, caption, rows: rows, items: items)
        geluTanh(scratch, scratch, count: rows * linear1.outFeatures)
        linear2(y, scratch, rows: rows, items: items)
    }
}

/// Per-block adaLN-single modulation: the block's own `scale_shift_table` `[K, E]` plus the shared `[B, K·E]`
/// modulation (`scale_shift_table[None] + timestep.reshape(B, K, -1)`, attention.py:989-992,
/// sana_transformer.py:261-263; K = 2 with the embedded timestep for the output head).
// table: [K·E], modulation: [B, K·E] (K·E = stride) -> y: [B, K·E]
func addScaleShiftTable(_ y: UnsafeMutablePointer<Float>, table: WeightView, _ modulation: [Float], batch: Int, stride: Int) {
    for b in 0..<batch {
        for j in 0..<stride { y[b * stride + j] = table.pointer[j] + modulation[b * stride + j] }
    }
}

/// The output head of PixArt and Sana (pixart_transformer_2d.py:338-361, sana_transformer.py:536-546):
/// `shift, scale = scale_shift_table + embedded_timestep`, `LN(x, 1e-6)·(1 + scale) + shift`, proj_out, and
/// the unpatchify `out[b, c, i·p + py, j·p + px] = x[b, i·w + j, (py·p + px)·Co + c]` on the runtime grid.
struct ModulatedOutputHead: Sendable {
    let scaleShiftTable: WeightView   // scale_shift_table [2, E]
    let projOut: LinearLayer          // proj_out [p·p·Co, E]
    let patch: Int, outChannels: Int

    init(_ store: WeightStore, width e: Int, patch p: Int, outChannels co: Int) throws {
        scaleShiftTable = try loadWeight(store, "scale_shift_table", shape: [2, e])
        projOut = try LinearLayer(store, "proj_out", in: e, out: p * p * co)
        patch = p
        outChannels = co
    }

    // hidden: [B, h·w, E], embedded: [B, E] -> [B, Co, h·p, w·p];  normed: [B·h·w, E] scratch
    func callAsFunction(_ hidden: UnsafePointer<Float>, embedded: [Float], batch: Int, gridHeight gh: Int, gridWidth gw: Int,
                        normed: UnsafeMutablePointer<Float>) -> Tensor {
        let e = projOut.inFeatures, n = gh * gw, p = patch, co = outChannels
        var mod = [Float](repeating: 0, count: batch * 2 * e)
        var doubled = [Float](repeating: 0, count: batch * 2 * e)   // the embedded timestep under both rows
        for b in 0..<batch {
            for part in 0..<2 { for j in 0..<e { doubled[(b * 2 + part) * e + j] = embedded[b * e + j] } }
        }
        addScaleShiftTable(&mod, table: scaleShiftTable, doubled, batch: batch, stride: 2 * e)
        mod.withUnsafeBufferPointer { m in
            layerNormModulate(normed, hidden, shift: m.baseAddress!, scale: m.baseAddress! + e, modStride: 2 * e,
                              batch: batch, tokens: n, features: e, eps: 1e-6)
        }
        var tokens = [Float](repeating: 0, count: batch * n * p * p * co)
        projOut(&tokens, normed, rows: batch * n, items: batch)
        var out = Tensor(uninitializedShape: [batch, co, gh * p, gw * p])
        out.data.withUnsafeMutableBufferPointer { op in
            unpatchify(op.baseAddress!, tokens, batch: batch, channels: co, gridHeight: gh, gridWidth: gw, patch: p)
        }
        return out
    }
}
