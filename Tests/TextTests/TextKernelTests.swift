import Foundation
import Testing
import Tensor

/// The text encoders' kernels against naive loops in Double.
@Suite struct TextKernelTests {
    var g = SystemRandomNumberGenerator()
    func random(_ n: Int, _ scale: Float = 1) -> [Float] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in Float.random(in: -scale...scale, using: &g) }
    }

    // q: [B, N, H·D], k/v: [B, N, Hkv·D] -> o: [B, N, H·D], naive eager attention
    func naiveAttention(q: [Float], k: [Float], v: [Float], b: Int, n: Int, h: Int, hkv: Int, d: Int, scale: Double,
                        softcap: Double?, keys: [Float], causal: Bool, window: Int?, bias: [Float]?) -> [Float] {
        var o = [Float](repeating: 0, count: b * n * h * d)
        for bi in 0..<b { for hi in 0..<h {
            let gi = hi / (h / hkv)
            for i in 0..<n {
                var s = [Double](repeating: 0, count: n)
                var allowed = [Bool](repeating: true, count: n)
                for j in 0..<n {
                    var dot = 0.0
                    for t in 0..<d { dot += Double(q[(bi * n + i) * h * d + hi * d + t]) * Double(k[(bi * n + j) * hkv * d + gi * d + t]) }
                    dot *= scale
                    if let c = softcap { dot = c * tanh(dot / c) }
                    if let bias { dot += Double(bias[(hi * n + i) * n + j]) }
                    s[j] = dot
                    allowed[j] = keys[bi * n + j] != 0 && (!causal || j <= i) && (window.map { i - j < $0 } ?? true)
                }
                var p = [Double](repeating: 1 / Double(n), count: n)
                if allowed.contains(true) {
                    let m = zip(s, allowed).filter(\.1).map(\.0).max()!
                    let e = (0..<n).map { allowed[$0] ? exp(s[$0] - m) : 0 }
                    let sum = e.reduce(0, +)
                    p = e.map { $0 / sum }
                }
                for t in 0..<d {
                    var acc = 0.0
                    for j in 0..<n { acc += p[j] * Double(v[(bi * n + j) * hkv * d + gi * d + t]) }
                    o[(bi * n + i) * h * d + hi * d + t] = Float(acc)
                }
            }
        } }
        return o
    }

    @Test(arguments: [(true, 3, true), (false, 0, false)])
    func maskedAttentionMatchesNaive(causal: Bool, window: Int, withBias: Bool) {
        let b = 2, n = 7, h = 4, hkv = 2, d = 8
        let q = random(b * n * h * d), k = random(b * n * hkv * d), v = random(b * n * hkv * d)
        // item 0 right-padded (2 pads), item 1 left-padded (3 pads: its first query rows see no key when causal)
        let keys: [Float] = [1, 1, 1, 1, 1, 0, 0] + [0, 0, 0, 1, 1, 1, 1]
        let bias = withBias ? random(h * n * n, 2) : nil
        let want = naiveAttention(q: q, k: k, v: v, b: b, n: n, h: h, hkv: hkv, d: d, scale: 0.3, softcap: causal ? 1.5 : nil,
                                  keys: keys, causal: causal, window: window > 0 ? window : nil, bias: bias)
        for threads in [1, 2] {
            var o = [Float](repeating: .nan, count: b * n * h * d)
            let count = maskedAttentionScratchCount(batch: b, heads: h, tokens: n, threads: threads)
            var scratch = [Float](repeating: 0, count: count)
            keys.withUnsafeBufferPointer { kp in
                (bias ?? [0]).withUnsafeBufferPointer { bp in
                    let mask = AttentionMask(keys: kp.baseAddress, causal: causal, window: window > 0 ? window : nil,
                                             bias: withBias ? bp.baseAddress : nil)
                    maskedAttention(&o, ldo: h * d, q: q, ldq: h * d, k: k, v: v, ldk: hkv * d, batch: b, tokens: n,
                                    heads: h, kvHeads: hkv, headDim: d, scale: 0.3, softcap: causal ? 1.5 : nil, mask: mask,
                                    scratch: &scratch, scratchCount: count, threads: threads)
                }
            }
            let err = zip(o, want).map { abs($0 - $1) }.max()!
            #expect(err < 1e-5, "threads \(threads): max error \(err)")
        }
    }

    @Test func rmsNormAndRotaryMatchNaive() {
        let m = 3, e = 16
        let x = random(m * e, 3), w = random(e)
        var y = [Float](repeating: 0, count: m * e)
        rmsNorm(&y, x, weight: w, rows: m, features: e, eps: 1e-6, offset: 1)
        for r in 0..<m {
            let ms = (0..<e).reduce(0.0) { $0 + Double(x[r * e + $1]) * Double(x[r * e + $1]) } / Double(e)
            for j in 0..<e {
                let want = Double(x[r * e + j]) / (ms + 1e-6).squareRoot() * (1 + Double(w[j]))
                #expect(abs(Double(y[r * e + j]) - want) < 1e-5 * max(1, abs(want)))
            }
        }
        // rotary: half-split pairs (i, i + D/2) rotated by position · base^(−2i/D)
        let n = 5, d = 8, heads = 2
        var q = random(n * heads * d)
        let before = q
        var cos = [Float](repeating: 0, count: n * d / 2), sin = cos
        ropeTables(cos: &cos, sin: &sin, tokens: n, headDim: d, base: 10000)
        applyRotary(&q, ldx: heads * d, cos: cos, sin: sin, batch: 1, tokens: n, heads: heads, headDim: d)
        for t in 0..<n { for hh in 0..<heads { for i in 0..<(d / 2) {
            let angle = Double(t) / pow(10000, Double(2 * i) / Double(d))
            let a = Double(before[t * heads * d + hh * d + i]), b = Double(before[t * heads * d + hh * d + i + d / 2])
            #expect(abs(Double(q[t * heads * d + hh * d + i]) - (a * Foundation.cos(angle) - b * Foundation.sin(angle))) < 1e-5)
            #expect(abs(Double(q[t * heads * d + hh * d + i + d / 2]) - (b * Foundation.cos(angle) + a * Foundation.sin(angle))) < 1e-5)
        } } }
    }
}
