import Foundation
import Tensor

/// Sinusoidal timestep features, `get_timestep_embedding` (diffusers embeddings.py:27-78), float32 math as
/// torch does it (docs/engine.md §2.3): `exponent[k] = Float(−ln maxPeriod)·Float(k) / Float(half − shift)`,
/// `freq = exp(exponent)`, `arg[b, k] = t[b]·freq[k]`, features `[sin | cos]` (`[cos | sin]` when flipped),
/// zero-padded to an odd `dim`. DiT: dim 256, flip true, shift 1.
// t: [B] -> [B, dim]
public func timestepEmbedding(
    _ timesteps: [Float], dim: Int = 256, flipSinToCos: Bool = true, downscaleFreqShift: Float = 1,
    maxPeriod: Double = 10000
) -> [Float] {
    let half = dim / 2
    let freq = (0..<half).map { k -> Float in
        let exponent = Float(-log(maxPeriod)) * Float(k)
        return exp(exponent / (Float(half) - downscaleFreqShift))
    }
    var out = [Float](repeating: 0, count: timesteps.count * dim)
    for (b, t) in timesteps.enumerated() {
        for k in 0..<half {
            let arg = t * freq[k]
            let (first, second) = flipSinToCos ? (cos(arg), sin(arg)) : (sin(arg), cos(arg))
            out[b * dim + k] = first
            out[b * dim + half + k] = second
        }
    }
    return out
}

/// 2-D sin-cos positional table of PatchEmbed, `get_2d_sincos_pos_embed` (embeddings.py:147-260; docs/engine.md §2.2)
/// for a runtime grid of `gridHeight × gridWidth` patches:
/// `gh[i] = Float(i) / Float(h / baseSize) / Float(interp)` (float32, likewise `gw[j]`), per axis
/// `omega[k] = 1 / 10000^(k / (d/2))` with d = E/2, `emb1(pos) = [sin(pos·omega) | cos(pos·omega)]` in Double,
/// and `table[i·w + j] = [emb1(gw[j]) | emb1(gh[i])]` — the column coordinate first.
// -> [h·w, E]
public func sinCosPositionEmbedding(
    embedDim e: Int, gridHeight h: Int, gridWidth w: Int, baseSize: Int, interpolationScale: Double = 1
) -> [Float] {
    let d = e / 2, quarter = d / 2
    let omega = (0..<quarter).map { 1.0 / pow(10000.0, Double($0) / (Double(d) / 2.0)) }
    func axis(_ n: Int) -> [Float] {
        let step = Float(Double(n) / Double(baseSize))
        return (0..<n).map { Float($0) / step / Float(interpolationScale) }
    }
    let gh = axis(h), gw = axis(w)
    // emb1 of each distinct coordinate, [n, d]
    func table(_ positions: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: positions.count * d)
        for (i, p) in positions.enumerated() {
            for k in 0..<quarter {
                let a = Double(p) * omega[k]
                t[i * d + k] = Float(sin(a))
                t[i * d + quarter + k] = Float(cos(a))
            }
        }
        return t
    }
    let rowTable = table(gh), columnTable = table(gw)
    var out = [Float](repeating: 0, count: h * w * e)
    for i in 0..<h {
        for j in 0..<w {
            let dst = (i * w + j) * e
            for k in 0..<d {
                out[dst + k] = columnTable[j * d + k]
                out[dst + d + k] = rowTable[i * d + k]
            }
        }
    }
    return out
}
