import Foundation

/// RMS norm over the last dimension: `y = x · rsqrt(mean(x²) + eps) · (offset + w)`. `offset` 1 is Gemma's
/// `(1 + weight)` (transformers models/gemma2/modeling_gemma2.py `Gemma2RMSNorm`), 0 is T5's plain weight
/// (models/t5/modeling_t5.py `T5LayerNorm`). The mean of squares is accumulated in Double. `y` may alias `x`.
// x: [M, E], w: [E] -> y: [M, E]
public func rmsNorm(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
    rows: Int, features e: Int, eps: Float, offset: Float
) {
    parallelFor(rows, grain: max(1, 8192 / max(e, 1))) { range in
        for r in range {
            let xr = x + r * e, yr = y + r * e
            var ss: Double = 0
            for j in 0..<e { ss += Double(xr[j]) * Double(xr[j]) }
            let rstd = 1 / (Float(ss / Double(e)) + eps).squareRoot()
            for j in 0..<e { yr[j] = (xr[j] * rstd) * (offset + w[j]) }
        }
    }
}

/// Rotary position embedding in place, half-split layout (transformers `rotate_half`, `apply_rotary_pos_emb`):
/// for each head, `x[i] ← x[i]·cos − x[i + D/2]·sin`, `x[i + D/2] ← x[i + D/2]·cos + x[i]·sin`, with the
/// angle of token n and frequency i from `cos`/`sin` (`ropeTables`).
// x: [B, N, ldx ≥ H·D], cos/sin: [N, D/2] -> x
public func applyRotary(
    _ x: UnsafeMutablePointer<Float>, ldx: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
    batch: Int, tokens n: Int, heads: Int, headDim d: Int
) {
    let half = d / 2
    parallelFor(batch * n, grain: max(1, 2048 / max(heads * d, 1))) { range in
        for row in range {
            let t = row % n
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let p = x + row * ldx + h * d
                for i in 0..<half {
                    let a = p[i], b = p[i + half]
                    p[i] = a * c[i] - b * s[i]
                    p[i + half] = b * c[i] + a * s[i]
                }
            }
        }
    }
}

/// Angles of the default RoPE as transformers computes them in float32: `inv_freq[i] = 1 / base^(2i/D)`,
/// `θ = position · inv_freq[i]` (modeling_gemma2.py `compute_default_rope_parameters`, `Gemma2RotaryEmbedding`).
// -> cos, sin: [N, D/2]
public func ropeTables(
    cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>, tokens n: Int, headDim d: Int, base: Float
) {
    let half = d / 2
    for i in 0..<half {
        let inv = 1 / Foundation.pow(base, Float(2 * i) / Float(d))
        for t in 0..<n {
            let angle = Float(t) * inv
            cos[t * half + i] = Foundation.cos(angle)
            sin[t * half + i] = Foundation.sin(angle)
        }
    }
}
