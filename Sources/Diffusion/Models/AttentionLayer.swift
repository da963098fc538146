import Tensor
import Weights

/// The projections of one diffusers `Attention` module (attention_processor.py:107-220) as PixArt and Sana use it:
/// to_q `[I, Dq]`, to_k/to_v `[I, Dkv]` (bias when `bias`), to_out.0 `[Dq, I]` (bias when `outBias`), I = heads · D,
/// and, with `qk_norm="rms_norm_across_heads"`, RMSNorm over all I features of q and of k (eps 1e-5, weight only).
struct AttentionLayer: Sendable {
    let toQ, toK, toV, toOut: LinearLayer
    let normQ, normK: WeightView?
    let heads: Int
    let headDim: Int

    init(_ store: WeightStore, _ prefix: String, queryDim: Int, keyDim: Int, heads: Int, headDim: Int,
         bias: Bool, outBias: Bool = true, qkNorm: String?) throws {
        let inner = heads * headDim
        self.heads = heads
        self.headDim = headDim
        toQ = try LinearLayer(store, prefix + ".to_q", in: queryDim, out: inner, bias: bias)
        toK = try LinearLayer(store, prefix + ".to_k", in: keyDim, out: inner, bias: bias)
        toV = try LinearLayer(store, prefix + ".to_v", in: keyDim, out: inner, bias: bias)
        toOut = try LinearLayer(store, prefix + ".to_out.0", in: inner, out: queryDim, bias: outBias)
        switch qkNorm {
        case nil:
            normQ = nil
            normK = nil
        case "rms_norm_across_heads":
            normQ = try loadWeight(store, prefix + ".norm_q.weight", shape: [inner])
            normK = try loadWeight(store, prefix + ".norm_k.weight", shape: [inner])
        case let other?:
            throw ModelError(.unsupportedConfig, "qk_norm \"\(other)\" is not supported (only rms_norm_across_heads)")
        }
    }

    var inner: Int { heads * headDim }

    /// q = norm_q(to_q(x)) over `queryRows` rows, k, v = norm_k(to_k(context)), to_v(context) over `keyRows` rows,
    /// one sgemm per batch item.
    // x: [Mq, Dq], context: [Mk, Dkv] -> q: [Mq, I], k/v: [Mk, I]
    func project(q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                 x: UnsafePointer<Float>, queryRows: Int, context: UnsafePointer<Float>, keyRows: Int, items: Int) {
        toQ(q, x, rows: queryRows, items: items)
        toK(k, context, rows: keyRows, items: items)
        toV(v, context, rows: keyRows, items: items)
        if let normQ { rmsNorm(q, q, weight: normQ.pointer, rows: queryRows, features: inner, eps: 1e-5, offset: 0) }
        if let normK { rmsNorm(k, k, weight: normK.pointer, rows: keyRows, features: inner, eps: 1e-5, offset: 0) }
    }

    /// q = norm_q(to_q(x)), one sgemm per batch item.
    // x: [Mq, Dq] -> q: [Mq, I]
    func projectQueries(_ q: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, items: Int) {
        toQ(q, x, rows: rows, items: items)
        if let normQ { rmsNorm(q, q, weight: normQ.pointer, rows: rows, features: inner, eps: 1e-5, offset: 0) }
    }

    /// k, v = norm_k(to_k(context)), to_v(context) over one item's `rows` context rows.
    // context: [Mk, Dkv] -> k/v: [Mk, I]
    func projectKeys(k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, context: UnsafePointer<Float>, rows: Int) {
        toK(k, context, rows: rows, items: 1)
        toV(v, context, rows: rows, items: 1)
        if let normK { rmsNorm(k, k, weight: normK.pointer, rows: rows, features: inner, eps: 1e-5, offset: 0) }
    }

    /// Softmax attention (AttnProcessor2_0 / SanaAttnProcessor2_0: SDPA, scale 1/√D) with an optional additive key
    /// mask, then to_out.0.
    // q: [B, Nq, I], k/v: [B, Nk, I], keyBias: [B, Nk]? -> y: [B, Nq, Dq];  attended: [B, Nq, I]
    func softmaxAttention(_ y: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                          v: UnsafePointer<Float>, batch: Int, queryTokens nq: Int, keyTokens nk: Int,
                          keyBias: UnsafePointer<Float>?, attended: UnsafeMutablePointer<Float>, scores: FloatBuffer) {
        attention(attended, ldo: inner, q: q, ldq: inner, k: k, ldk: inner, v: v, ldv: inner,
                  batch: batch, queryTokens: nq, keyTokens: nk, heads: heads, headDim: headDim,
                  keyBias: keyBias, scratch: scores.pointer, scratchCount: scores.count)
        toOut(y, attended, rows: batch * nq, items: batch)
    }

    /// Scores scratch for `softmaxAttention`: every head a full slot, capped at 16 M floats.
    func scoresCount(queryTokens nq: Int, keyTokens nk: Int) -> Int { min(heads * nq * nk, max(nk, 1 << 24)) }
}

/// `(1 − mask)·−10000` (pixart_transformer_2d.py / sana_transformer.py `forward`), the additive key bias of
/// masked cross-attention; no mask = every key kept.
// mask: [B, L]? (1 keep, 0 discard) -> [B, L]
func keyBias(mask: [Float]?, batch: Int, keys: Int) -> [Float] {
    guard let mask else { return [Float](repeating: 0, count: batch * keys) }
    return mask.map { (1 - $0) * -10000 }
}
