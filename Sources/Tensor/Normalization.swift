import Foundation

// Normalisations. Statistics are accumulated in Double (two passes: mean, then biased variance),
// the normalised value is computed in Float: `(x − μ)·rstd`, then the affine or the modulation.

/// Layer norm over the last dimension (torch `LayerNorm`; `gamma`/`beta` nil = elementwise_affine False).
// x: [M, E], gamma/beta: [E]? -> y: [M, E]
public func layerNorm(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, rows: Int, features e: Int, eps: Float
) {
    parallelFor(rows, grain: max(1, 8192 / max(e, 1))) { range in
        for r in range {
            let xr = x + r * e, yr = y + r * e
            let (mean, rstd) = rowStatistics(xr, e, eps)
            for j in 0..<e {
                var v = (xr[j] - mean) * rstd
                if let gamma { v *= gamma[j] }
                if let beta { v += beta[j] }
                yr[j] = v
            }
        }
    }
}

/// Affine-free layer norm followed by AdaLN modulation, `LN(x)·(1 + scale[b]) + shift[b]`
/// (normalization.py:149,169; attention.py:1056-1059). `shift`/`scale` point at row 0 of `[B, modStride]`.
// x: [B, N, E], shift/scale: [B, modStride] (E used) -> y: [B, N, E]
public func layerNormModulate(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    shift: UnsafePointer<Float>, scale: UnsafePointer<Float>, modStride: Int,
    batch: Int, tokens: Int, features e: Int, eps: Float
) {
    parallelFor(batch * tokens, grain: max(1, 8192 / max(e, 1))) { range in
        for r in range {
            let b = r / tokens
            let sh = shift + b * modStride, sc = scale + b * modStride
            let xr = x + r * e, yr = y + r * e
            let (mean, rstd) = rowStatistics(xr, e, eps)
            for j in 0..<e { yr[j] = ((xr[j] - mean) * rstd) * (1 + sc[j]) + sh[j] }
        }
    }
}

/// Group norm (torch `GroupNorm`): per (item, group of C/G channels), mean and biased variance over
/// (C/G)·S values, then `(x − μ)·rstd·γ_c + β_c`; with `silu`, SiLU is applied to the result.
// x: [B, C, S] (S = H·W), gamma/beta: [C] -> y: [B, C, S]
public func groupNorm(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
    batch: Int, channels c: Int, spatial s: Int, groups g: Int, eps: Float, silu applySiLU: Bool = false
) {
    let perGroup = c / g
    // Statistics per (item, group); then the normalisation is spread over (item, channel) rows.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * batch * g) { st in
        let st = st.baseAddress!
        parallelFor(batch * g) { range in
            for bg in range {
                let (mean, rstd) = rowStatistics(x + bg * perGroup * s, perGroup * s, eps)
                st[2 * bg] = mean
                st[2 * bg + 1] = rstd
            }
        }
        parallelFor(batch * c, grain: max(1, 16_384 / max(s, 1))) { range in
            for bc in range {
                let ch = bc % c
                let bg = (bc / c) * g + ch / perGroup
                let mean = st[2 * bg], rstd = st[2 * bg + 1]
                let gm = gamma[ch], bt = beta[ch]
                let xr = x + bc * s, yr = y + bc * s
                if applySiLU {
                    mapVectors(yr, xr, 0..<s) { v in
                        let n = ((v - mean) * rstd) * gm + bt
                        return n / (1 + vexp(-n))
                    }
                } else {
                    for j in 0..<s { yr[j] = ((xr[j] - mean) * rstd) * gm + bt }
                }
            }
        }
    }
}

/// Mean and 1/sqrt(var + eps) of `n` floats, accumulated in Double.
@inline(__always)
func rowStatistics(_ x: UnsafePointer<Float>, _ n: Int, _ eps: Float) -> (Float, Float) {
    var sum = 0.0
    for j in 0..<n { sum += Double(x[j]) }
    let mean = sum / Double(n)
    var sq = 0.0
    for j in 0..<n {
        let d = Double(x[j]) - mean
        sq += d * d
    }
    let variance = sq / Double(n)
    return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
}

/// RMS norm across the channels of each pixel of a feature map (DC-AE's `norm(x.movedim(1, -1)).movedim(-1, 1)`,
/// autoencoder_dc.py:55-57; diffusers normalization.py:510-568 `RMSNorm`): per (item, pixel), over C values `S` apart,
/// `x · rsqrt(mean(x²) + eps)`, then `· weight` and `+ bias` when given; the mean of squares accumulated in Double.
// x: [B, C, S], weight/bias: [C]? -> y: [B, C, S] (y may be x)
public func rmsNormChannels(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, batch: Int, channels c: Int, spatial s: Int, eps: Float
) {
    parallelFor(batch * s, grain: max(1, 4096 / max(c, 1))) { range in
        for bp in range {
            let b = bp / s, p = bp % s
            let xr = x + b * c * s + p, yr = y + b * c * s + p
            var sq = 0.0
            for ch in 0..<c { sq += Double(xr[ch * s]) * Double(xr[ch * s]) }
            let rstd = Float(1 / (sq / Double(c) + Double(eps)).squareRoot())
            for ch in 0..<c {
                var v = xr[ch * s] * rstd
                if let weight { v *= weight[ch] }
                if let bias { v += bias[ch] }
                yr[ch * s] = v
            }
        }
    }
}

/// Per-channel affine map `y = x·scale[c] + shift[c]`: BatchNorm in eval mode, with
/// `scale = weight / sqrt(running_var + eps)` and `shift = bias − running_mean · scale` folded once at load
/// (torch's batch_norm_cpu_transform_input does the same fold).
// x: [B, C, S], scale/shift: [C] -> y: [B, C, S] (y may be x)
public func channelAffine(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, batch: Int, channels c: Int, spatial s: Int
) {
    parallelFor(batch * c, grain: max(1, 16_384 / max(s, 1))) { range in
        for bc in range {
            let a = scale[bc % c], t = shift[bc % c]
            let xr = x + bc * s, yr = y + bc * s
            for j in 0..<s { yr[j] = xr[j] * a + t }
        }
    }
}
