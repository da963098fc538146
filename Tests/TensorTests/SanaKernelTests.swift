import Foundation
import Testing
@testable import Tensor

// The kernels of the Sana / PixArt / DC-AE models against naive references written from the torch definitions.

extension Naive {
    /// Linear attention as torch writes it: v padded with a row of ones, S = v_pad·k, H = S·q,
    /// out = H[:-1] / (H[-1] + eps). q/k/v: dense [B, N, H·D] (head h at h·D).
    static func linearAttention(_ q: [Float], _ k: [Float], _ v: [Float], batch: Int, n: Int, heads: Int, d: Int, eps: Double) -> [Double] {
        let e = heads * d
        var o = [Double](repeating: 0, count: batch * n * e)
        for b in 0..<batch {
            for h in 0..<heads {
                func at(_ x: [Float], _ t: Int, _ i: Int) -> Double { Double(x[(b * n + t) * e + h * d + i]) }
                // S[i, j] = Σ_t vpad[i, t]·k[t, j], i in 0...d (row d = ones)
                var s = [[Double]](repeating: [Double](repeating: 0, count: d), count: d + 1)
                for i in 0...d {
                    for j in 0..<d {
                        for t in 0..<n { s[i][j] += (i < d ? at(v, t, i) : 1) * at(k, t, j) }
                    }
                }
                for t in 0..<n {
                    var hcol = [Double](repeating: 0, count: d + 1)
                    for i in 0...d { for j in 0..<d { hcol[i] += s[i][j] * at(q, t, j) } }
                    for i in 0..<d { o[(b * n + t) * e + h * d + i] = hcol[i] / (hcol[d] + eps) }
                }
            }
        }
        return o
    }
}

@Suite struct LinearAttentionKernelTests {
    @Test(arguments: [(1, 5, 1, 3), (2, 17, 3, 8), (3, 64, 2, 16)])
    func matchesTheTorchPaddedForm(shape: (Int, Int, Int, Int)) {
        let (b, n, h, d) = shape
        var rng = TestRandom(seed: UInt64(b * 100 + n + h))
        let e = h * d
        let q = rng.values(b * n * e).map { max($0, 0) }, k = rng.values(b * n * e).map { max($0, 0) }, v = rng.values(b * n * e)
        let per = linearAttentionScratch(tokens: n, headDim: d)
        var outputs: [[Float]] = []
        for slots in [1, 7] {   // one slot (serial) and several (parallel): the same bits
            var scratch = [Float](repeating: .nan, count: per * slots)
            var o = [Float](repeating: .nan, count: b * n * e)
            linearAttention(&o, ldo: e, q: q, ldq: e, k: k, ldk: e, v: v, ldv: e, inputHeadStride: d, batch: b, tokens: n,
                            heads: h, headDim: d, eps: 1e-15, scratch: &scratch, scratchCount: scratch.count)
            expectClose(o, Naive.linearAttention(q, k, v, batch: b, n: n, heads: h, d: d, eps: 1e-15))
            outputs.append(o)
        }
        #expect(outputs[0] == outputs[1])
    }

    @Test func readsHeadsSideBySideAsDCAEGroupsThem() {
        // DC-AE: group g's q, k, v are columns g·3D ..< g·3D + 3D of one [B, N, 3·G·D] buffer.
        let (b, n, g, d) = (2, 9, 3, 4)
        var rng = TestRandom(seed: 5)
        let fused = rng.values(b * n * 3 * g * d).map { abs($0) }
        let width = 3 * g * d
        var q = [Float](), k = [Float](), v = [Float]()
        for row in 0..<(b * n) {
            for group in 0..<g {
                let base = row * width + group * 3 * d
                q += fused[base..<(base + d)]
                k += fused[(base + d)..<(base + 2 * d)]
                v += fused[(base + 2 * d)..<(base + 3 * d)]
            }
        }
        var scratch = [Float](repeating: 0, count: 4 * linearAttentionScratch(tokens: n, headDim: d))
        var o = [Float](repeating: .nan, count: b * n * g * d)
        fused.withUnsafeBufferPointer { f in
            let base = f.baseAddress!
            linearAttention(&o, ldo: g * d, q: base, ldq: width, k: base + d, ldk: width, v: base + 2 * d, ldv: width,
                            inputHeadStride: 3 * d, batch: b, tokens: n, heads: g, headDim: d, eps: 1e-15,
                            scratch: &scratch, scratchCount: scratch.count)
        }
        expectClose(o, Naive.linearAttention(q, k, v, batch: b, n: n, heads: g, d: d, eps: 1e-15))
    }

    @Test func softmaxAttentionAddsTheKeyBias() {
        let (b, nq, nk, h, d) = (2, 5, 6, 2, 4)
        var rng = TestRandom(seed: 9)
        let e = h * d
        let q = rng.values(b * nq * e), k = rng.values(b * nk * e), v = rng.values(b * nk * e)
        let bias: [Float] = [0, 0, 0, 0, 0, 0, 0, 0, 0, -10000, -10000, -10000]
        var scratch = [Float](repeating: 0, count: h * nq * nk)
        var o = [Float](repeating: .nan, count: b * nq * e)
        attention(&o, ldo: e, q: q, ldq: e, k: k, ldk: e, v: v, ldv: e, batch: b, queryTokens: nq, keyTokens: nk, heads: h,
                  headDim: d, keyBias: bias, scratch: &scratch, scratchCount: scratch.count)
        expectClose(o, Naive.attention(q, k, v, batch: b, nq: nq, nk: nk, heads: h, d: d, bias: bias))
    }
}

@Suite struct SanaNormKernelTests {
    @Test func channelRMSNormIsRMSNormOfTheTransposedMap() {
        let (b, c, s) = (2, 5, 6)
        var rng = TestRandom(seed: 22)
        let x = rng.values(b * c * s), w = rng.values(c), bias = rng.values(c)
        var y = [Float](repeating: .nan, count: x.count)
        rmsNormChannels(&y, x, weight: w, bias: bias, batch: b, channels: c, spatial: s, eps: 1e-5)
        var expected = [Double](repeating: 0, count: x.count)
        for item in 0..<b {
            for p in 0..<s {
                let column = (0..<c).map { Double(x[(item * c + $0) * s + p]) }
                let rstd = 1 / (column.reduce(0) { $0 + $1 * $1 } / Double(c) + 1e-5).squareRoot()
                for ch in 0..<c { expected[(item * c + ch) * s + p] = column[ch] * rstd * Double(w[ch]) + Double(bias[ch]) }
            }
        }
        expectClose(y, expected)
    }

    @Test func channelAffineScalesAndShiftsEachChannel() {
        let (b, c, s) = (2, 3, 4)
        var rng = TestRandom(seed: 23)
        let x = rng.values(b * c * s), a = rng.values(c), t = rng.values(c)
        var y = x
        channelAffine(&y, y, scale: a, shift: t, batch: b, channels: c, spatial: s)
        expectClose(y, x.indices.map { Double(x[$0]) * Double(a[($0 / s) % c]) + Double(t[($0 / s) % c]) })
    }
}

@Suite struct SanaConvKernelTests {
    @Test(arguments: [(3, 5, 7, 3), (2, 4, 4, 5), (1, 1, 6, 3), (2, 3, 2, 5)])
    func depthwiseMatchesAGroupedNaiveConvolution(shape: (Int, Int, Int, Int)) {
        let (c, h, w, k) = shape
        let batch = 2
        var rng = TestRandom(seed: UInt64(c * 31 + h * 7 + w + k))
        let x = rng.values(batch * c * h * w), weight = rng.values(c * k * k), bias = rng.values(c)
        var y = [Float](repeating: .nan, count: x.count)
        depthwiseConv2d(&y, x, weight, bias, batch: batch, channels: c, height: h, width: w, kernel: k)
        var expected = [Double]()
        for item in 0..<batch {
            for ch in 0..<c {
                let plane = Array(x[((item * c + ch) * h * w)..<((item * c + ch + 1) * h * w)])
                expected += Naive.conv2d(plane, Array(weight[(ch * k * k)..<((ch + 1) * k * k)]), [bias[ch]], batch: 1, c: 1, o: 1,
                                         h: h, wd: w, k: k, stride: 1, top: k / 2, bottom: k / 2, left: k / 2, right: k / 2)
            }
        }
        expectClose(y, expected)
    }

    @Test func groupedPointwiseUsesEachGroupsOwnBlock() {
        let (batch, groups, g, s) = (2, 3, 4, 5)
        var rng = TestRandom(seed: 31)
        let x = rng.values(batch * groups * g * s), w = rng.values(groups * g * g)
        var y = [Float](repeating: .nan, count: x.count)
        groupedPointwiseConv2d(&y, x, w, batch: batch, groups: groups, groupChannels: g, spatial: s)
        var expected = [Double](repeating: 0, count: x.count)
        for item in 0..<batch {
            for oc in 0..<(groups * g) {
                let group = oc / g
                for p in 0..<s {
                    var acc = 0.0
                    for i in 0..<g { acc += Double(w[oc * g + i]) * Double(x[(item * groups * g + group * g + i) * s + p]) }
                    expected[(item * groups * g + oc) * s + p] = acc
                }
            }
        }
        expectClose(y, expected)
    }
}

@Suite struct SanaLayoutKernelTests {
    @Test func pixelShuffleAndUnshuffleFollowTorchIndexingAndInvertEachOther() {
        let (b, c, h, w) = (2, 3, 2, 3)
        let x = (0..<(b * 4 * c * h * w)).map(Float.init)
        var shuffled = [Float](repeating: .nan, count: x.count)
        pixelShuffle2x(&shuffled, x, batch: b, channels: c, height: h, width: w)
        for item in 0..<b {
            for ch in 0..<c {
                for yy in 0..<(2 * h) {
                    for xx in 0..<(2 * w) {
                        let source = (((item * 4 * c) + 4 * ch + 2 * (yy % 2) + xx % 2) * h + yy / 2) * w + xx / 2
                        #expect(shuffled[((item * c + ch) * 2 * h + yy) * 2 * w + xx] == x[source])
                    }
                }
            }
        }
        var back = [Float](repeating: .nan, count: x.count)
        pixelUnshuffle2x(&back, shuffled, batch: b, channels: c, height: h, width: w)
        #expect(back == x)
    }

    @Test func channelGroupMeanAndRepeatMatchUnflattenMeanAndRepeatInterleave() {
        let (b, c, g, s) = (2, 3, 4, 5)
        var rng = TestRandom(seed: 41)
        let x = rng.values(b * c * g * s)
        var mean = [Float](repeating: .nan, count: b * c * s)
        channelGroupMean(&mean, x, batch: b, channels: c, group: g, spatial: s)
        expectClose(mean, (0..<(b * c * s)).map { i in
            let bc = i / s, p = i % s
            return (0..<g).reduce(0.0) { $0 + Double(x[(bc * g + $1) * s + p]) } / Double(g)
        })
        var repeated = [Float](repeating: .nan, count: b * c * g * s)
        repeatChannels(&repeated, mean, batch: b, channels: c, repeats: g, spatial: s)
        for i in repeated.indices { #expect(repeated[i] == mean[(i / s / g) * s + i % s]) }
    }

    /// The DC-AE up block's shortcut added in one pass equals the repeated, shuffled map added, bit for bit (2 and
    /// 1 repeats: 256 → 128 and 128 → 256 channels shaped small).
    @Test(arguments: [(4, 2), (2, 4), (3, 3)])
    func addPixelShuffledRepeatIsAddOfShuffledRepeat(c: Int, co: Int) {
        let (b, h, w) = (2, 3, 5)
        var rng = TestRandom(seed: UInt64(61 + c * 7 + co))
        let x = rng.values(b * c * h * w), y0 = rng.values(b * co * 4 * h * w)
        let r = 4 * co / c
        var repeated = [Float](repeating: .nan, count: b * 4 * co * h * w)
        repeatChannels(&repeated, x, batch: b, channels: c, repeats: r, spatial: h * w)
        var shuffled = [Float](repeating: .nan, count: y0.count)
        pixelShuffle2x(&shuffled, repeated, batch: b, channels: co, height: h, width: w)
        var expected = y0
        add(&expected, y0, shuffled, count: y0.count)
        var y = y0
        addPixelShuffledRepeat(&y, x, batch: b, channels: c, outChannels: co, height: h, width: w)
        #expect(y == expected)
    }

    @Test func reluAndGLUSiLU() {
        let (b, c, s) = (2, 3, 4)
        var rng = TestRandom(seed: 51)
        let x = rng.values(b * 2 * c * s, scale: 4)
        var r = [Float](repeating: .nan, count: x.count)
        relu(&r, x, count: x.count)
        #expect(r == x.map { max($0, 0) })
        var y = [Float](repeating: .nan, count: b * c * s)
        gluSiLU(&y, x, batch: b, channels: c, spatial: s)
        expectClose(y, (0..<(b * c * s)).map { i in
            let item = i / (c * s), rest = i % (c * s)
            let hidden = Double(x[item * 2 * c * s + rest]), gate = Double(x[item * 2 * c * s + c * s + rest])
            return hidden * Naive.silu(gate)
        })
    }
}

@Suite struct ResizeKernelTests {
    /// torch's align_corners=False bilinear, written from its definition in Double.
    static func naive(_ x: [Float], planes: Int, h: Int, w: Int, ho: Int, wo: Int) -> [Double] {
        func axis(_ n: Int, _ out: Int, _ j: Int) -> (Int, Int, Double) {
            let src = max(Double(n) / Double(out) * (Double(j) + 0.5) - 0.5, 0)
            let i0 = min(Int(src.rounded(.down)), n - 1)
            return (i0, min(i0 + 1, n - 1), src - Double(i0))
        }
        var y = [Double]()
        for p in 0..<planes {
            for oy in 0..<ho {
                let (y0, y1, ly) = axis(h, ho, oy)
                for ox in 0..<wo {
                    let (x0, x1, lx) = axis(w, wo, ox)
                    func at(_ r: Int, _ c: Int) -> Double { Double(x[(p * h + r) * w + c]) }
                    y.append((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)))
                }
            }
        }
        return y
    }

    @Test(arguments: [(8, 12, 4, 6), (4, 6, 9, 13), (16, 16, 5, 7), (3, 5, 3, 5)])
    func matchesTorchBilinearWithoutAlignCorners(shape: (Int, Int, Int, Int)) {
        let (h, w, ho, wo) = shape
        var rng = TestRandom(seed: UInt64(h * 100 + w + ho))
        let x = rng.values(2 * h * w)
        var y = [Float](repeating: .nan, count: 2 * ho * wo)
        resizeBilinear(&y, x, planes: 2, height: h, width: w, outHeight: ho, outWidth: wo)
        expectClose(y, Self.naive(x, planes: 2, h: h, w: w, ho: ho, wo: wo))
        if (h, w) == (ho, wo) { #expect(y == x) }
    }
}

@Suite struct AttentionBatchIndependenceTests {
    @Test func anItemsBitsDoNotDependOnItsBatchOrTheScratchSize() {
        let (b, n, h, d) = (3, 200, 2, 8)
        var rng = TestRandom(seed: 77)
        let e = h * d
        let q = rng.values(b * n * e), k = rng.values(b * n * e), v = rng.values(b * n * e)
        var scratch = [Float](repeating: 0, count: h * n * n)
        var all = [Float](repeating: .nan, count: b * n * e)
        attention(&all, ldo: e, q: q, ldq: e, k: k, ldk: e, v: v, ldv: e, batch: b, queryTokens: n, keyTokens: n, heads: h,
                  headDim: d, scratch: &scratch, scratchCount: scratch.count)
        let row = n * e
        for item in 0..<b {
            let slice = { (x: [Float]) in Array(x[(item * row)..<((item + 1) * row)]) }
            for count in [attentionChunkRows * n, 5 * attentionChunkRows * n] {   // one slot, several slots
                var small = [Float](repeating: 0, count: count)
                var alone = [Float](repeating: .nan, count: row)
                attention(&alone, ldo: e, q: slice(q), ldq: e, k: slice(k), ldk: e, v: slice(v), ldv: e, batch: 1, queryTokens: n,
                          keyTokens: n, heads: h, headDim: d, scratch: &small, scratchCount: count)
                #expect(alone == slice(all), "item \(item), scratch \(count)")
            }
        }
        expectClose(all, Naive.attention(q, k, v, batch: b, nq: n, nk: n, heads: h, d: d))
    }
}

extension Naive {
    /// GLUMBConv's middle as torch writes it on NCHW: Conv2d(2C, 2C, 3, padding=1, groups=2C) with bias, then
    /// `hidden, gate = chunk(2, dim=1)`, `hidden · SiLU(gate)`. x: [B, 2C, H, W] -> [B, C, H, W].
    static func depthwiseGLU(_ x: [Float], _ w: [Float], _ bias: [Float], batch: Int, c: Int, h: Int, wd: Int) -> [Double] {
        func conv(_ b: Int, _ ch: Int, _ i: Int, _ j: Int) -> Double {
            var acc = Double(bias[ch])
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let yy = i + ky - 1, xx = j + kx - 1
                    guard yy >= 0, yy < h, xx >= 0, xx < wd else { continue }
                    acc += Double(w[ch * 9 + ky * 3 + kx]) * Double(x[((b * 2 * c + ch) * h + yy) * wd + xx])
                }
            }
            return acc
        }
        var y = [Double](repeating: 0, count: batch * c * h * wd)
        for b in 0..<batch {
            for ch in 0..<c {
                for i in 0..<h {
                    for j in 0..<wd {
                        let g = conv(b, c + ch, i, j)
                        y[((b * c + ch) * h + i) * wd + j] = conv(b, ch, i, j) * g / (1 + exp(-g))
                    }
                }
            }
        }
        return y
    }
}

@Suite struct DepthwiseGLUKernelTests {
    /// Channel-major `[B, C, H, W]` to channels-last `[B, H, W, C]`.
    static func channelsLast(_ x: [Float], batch: Int, c: Int, s: Int) -> [Float] {
        var y = x
        for b in 0..<batch { for ch in 0..<c { for p in 0..<s { y[(b * s + p) * c + ch] = x[(b * c + ch) * s + p] } } }
        return y
    }

    // (batch, C, H, W): vector body and scalar tail (C = 11, 19), a single pixel, a single row or column.
    @Test(arguments: [(1, 8, 1, 1), (2, 11, 3, 4), (1, 19, 5, 1), (2, 16, 1, 6), (3, 24, 4, 4)])
    func matchesTorchsDepthwiseConvThenGLU(shape: (Int, Int, Int, Int)) {
        let (b, c, h, w) = shape
        var rng = TestRandom(seed: UInt64(b * 1000 + c * 10 + h + w))
        let x = rng.values(b * 2 * c * h * w), weight = rng.values(2 * c * 9), bias = rng.values(2 * c)
        var taps = [Float](repeating: .nan, count: 9 * 2 * c)
        depthwiseTapsChannelsLast(&taps, weight, channels: 2 * c)
        let xl = Self.channelsLast(x, batch: b, c: 2 * c, s: h * w)
        var y = [Float](repeating: .nan, count: b * h * w * c)
        depthwise3x3GLUChannelsLast(&y, xl, taps: taps, bias: bias, batch: b, height: h, width: w, channels: c)
        let expected = Naive.depthwiseGLU(x, weight, bias, batch: b, c: c, h: h, wd: w)
        expectClose(y, Self.channelsLast(expected.map { Float($0) }, batch: b, c: c, s: h * w).map(Double.init), rtol: 2e-6)
        expectElementwiseClose(y, Self.channelsLast(expected.map { Float($0) }, batch: b, c: c, s: h * w).map(Double.init),
                               rtol: 1e-4, atol: 1e-6)

        // Each item alone gives the same bits as in the batch.
        let per = h * w * c
        for item in 0..<b {
            var alone = [Float](repeating: .nan, count: per)
            Array(xl[(item * 2 * per)..<((item + 1) * 2 * per)]).withUnsafeBufferPointer { xi in
                depthwise3x3GLUChannelsLast(&alone, xi.baseAddress!, taps: taps, bias: bias, batch: 1, height: h, width: w, channels: c)
            }
            #expect(alone == Array(y[(item * per)..<((item + 1) * per)]))
        }
    }
}
