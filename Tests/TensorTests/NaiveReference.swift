import Foundation
import Testing

// Naive, obviously-correct reference implementations (Double arithmetic, direct index formulas
// taken from the torch definitions) that the optimised kernels are checked against.

/// Deterministic values in [-scale, scale) (xorshift64*), so failures reproduce.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        let bits = (state &* 0x2545_F491_4F6C_DD1D) >> 40
        return Float(bits) / Float(1 << 24) * 2 - 1
    }
    mutating func values(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// Expects `actual` within `rtol` of `expected`, relative to the largest expected magnitude.
func expectClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-5,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    let scale = max(expected.map { abs($0) }.max() ?? 0, 1e-30)
    var worst = 0.0
    for (a, e) in zip(actual, expected) { worst = max(worst, abs(Double(a) - e) / scale) }
    #expect(worst <= rtol, "max error \(worst) relative to \(scale)", sourceLocation: sourceLocation)
}

/// Expects each element within `rtol` of its own magnitude (plus a tiny absolute floor).
func expectElementwiseClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-30,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    var worst = 0.0
    for (a, e) in zip(actual, expected) { worst = max(worst, (abs(Double(a) - e) - atol) / max(abs(e), 1e-30)) }
    #expect(worst <= rtol, "max elementwise relative error \(worst)", sourceLocation: sourceLocation)
}

enum Naive {
    // x: [M, K], w: [O, K], b: [O]? -> [M, O]
    static func linear(_ x: [Float], _ w: [Float], _ b: [Float]?, m: Int, k: Int, o: Int) -> [Double] {
        var y = [Double](repeating: 0, count: m * o)
        for r in 0..<m {
            for j in 0..<o {
                var s = b.map { Double($0[j]) } ?? 0
                for i in 0..<k { s += Double(x[r * k + i]) * Double(w[j * k + i]) }
                y[r * o + j] = s
            }
        }
        return y
    }

    // torch Conv2d after F.pad(x, (left, right, top, bottom)); x: [B, C, H, W], w: [O, C, k, k]
    static func conv2d(_ x: [Float], _ w: [Float], _ b: [Float]?, batch: Int, c: Int, o: Int, h: Int, wd: Int,
                       k: Int, stride: Int, top: Int, bottom: Int, left: Int, right: Int) -> [Double] {
        let ho = (h + top + bottom - k) / stride + 1, wo = (wd + left + right - k) / stride + 1
        var y = [Double](repeating: 0, count: batch * o * ho * wo)
        for bi in 0..<batch {
            for oc in 0..<o {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var s = b.map { Double($0[oc]) } ?? 0
                        for ic in 0..<c {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * stride + ky - top, ix = ox * stride + kx - left
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    s += Double(x[((bi * c + ic) * h + iy) * wd + ix])
                                        * Double(w[((oc * c + ic) * k + ky) * k + kx])
                                }
                            }
                        }
                        y[((bi * o + oc) * ho + oy) * wo + ox] = s
                    }
                }
            }
        }
        return y
    }

    static func silu(_ v: Double) -> Double { v / (1 + exp(-v)) }
    static func geluTanh(_ v: Double) -> Double {
        0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
    }

    // x: [B, C, S]
    static func groupNorm(_ x: [Float], _ gamma: [Float], _ beta: [Float], batch: Int, c: Int, s: Int, groups: Int,
                          eps: Double, silu applySiLU: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        let cg = c / groups
        for b in 0..<batch {
            for g in 0..<groups {
                let idx = (0..<(cg * s)).map { (b * c + g * cg) * s + $0 }
                let mean = idx.reduce(0.0) { $0 + Double(x[$1]) } / Double(idx.count)
                let variance = idx.reduce(0.0) { $0 + pow(Double(x[$1]) - mean, 2) } / Double(idx.count)
                for i in idx {
                    let ch = (i / s) % c
                    let v = (Double(x[i]) - mean) / (variance + eps).squareRoot() * Double(gamma[ch]) + Double(beta[ch])
                    y[i] = applySiLU ? silu(v) : v
                }
            }
        }
        return y
    }

    // x: [M, E]
    static func layerNorm(_ x: [Float], _ gamma: [Float]?, _ beta: [Float]?, rows: Int, e: Int, eps: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<rows {
            let row = (0..<e).map { Double(x[r * e + $0]) }
            let mean = row.reduce(0, +) / Double(e)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(e)
            for j in 0..<e {
                var v = (row[j] - mean) / (variance + eps).squareRoot()
                if let gamma { v *= Double(gamma[j]) }
                if let beta { v += Double(beta[j]) }
                y[r * e + j] = v
            }
        }
        return y
    }

    // q: [B, Nq, H·D], k/v: [B, Nk, H·D] (dense), bias: [B, Nk]? (SDPA's additive attn_mask) -> [B, Nq, H·D]
    static func attention(_ q: [Float], _ k: [Float], _ v: [Float], batch: Int, nq: Int, nk: Int, heads: Int, d: Int,
                          bias: [Float]? = nil) -> [Double] {
        let e = heads * d
        var o = [Double](repeating: 0, count: batch * nq * e)
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<nq {
                    var scores = [Double](repeating: 0, count: nk)
                    for j in 0..<nk {
                        var s = 0.0
                        for t in 0..<d { s += Double(q[(b * nq + i) * e + h * d + t]) * Double(k[(b * nk + j) * e + h * d + t]) }
                        scores[j] = s / Double(d).squareRoot() + (bias.map { Double($0[b * nk + j]) } ?? 0)
                    }
                    let m = scores.max()!
                    let ex = scores.map { exp($0 - m) }
                    let sum = ex.reduce(0, +)
                    for t in 0..<d {
                        var acc = 0.0
                        for j in 0..<nk { acc += ex[j] / sum * Double(v[(b * nk + j) * e + h * d + t]) }
                        o[(b * nq + i) * e + h * d + t] = acc
                    }
                }
            }
        }
        return o
    }
}
