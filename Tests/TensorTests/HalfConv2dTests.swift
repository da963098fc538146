import Foundation
import Testing
@testable import Tensor

// Convolutions over 16-bit weights (HalfConv2d.swift): oneDNN's bf16 direct kernel against the naive convolution
// over the bf16-rounded input and weight, its independence from batch size, thread count and row strips, and the
// widening path (f16, CPUs without bf16 dot products) against the float32 kernels over the widened weight.
//
// Tolerances: a product of two bf16 values is exact in float32, so over the *rounded* input the kernel differs from
// the fp64 sum only by float32 accumulation (the float32 direct kernel's 1e-5, relative to the largest output);
// over the unrounded input it also carries the input's rounding to bf16 (relative 2^-9 per value), which over
// C·k·k ≤ 600 terms of random sign stays well under 1e-2 of the largest output.

private func bf16Bits(_ v: Float) -> UInt16 {
    var out: UInt16 = 0
    withUnsafeMutablePointer(to: &out) { o in withUnsafePointer(to: v) { roundToBF16(o, $0, count: 1) } }
    return out
}

private func widened(_ bits: [UInt16]) -> [Float] { bits.map { Float(bitPattern: UInt32($0) << 16) } }

/// Runs `body` with `bits` as a 16-bit `[O, C, k, k]` weight.
private func withHalf<R>(_ bits: [UInt16], format: HalfMatrix.Format, shape: [Int], _ body: (HalfMatrix) -> R) -> R {
    bits.withUnsafeBufferPointer { p in
        body(HalfMatrix(format: format, shape: shape, pointer: p.baseAddress!, owner: bits as NSArray))
    }
}

@Suite struct HalfConv2dTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var batch, c, o, h, w, k, stride, top, bottom, left, right: Int
        var testDescription: String { "\(batch)x\(c)->\(o) \(h)x\(w) k\(k) s\(stride) pad(\(top),\(bottom),\(left),\(right))" }
        var geometry: Conv2dGeometry {
            Conv2dGeometry(inChannels: c, outChannels: o, height: h, width: w, kernel: k, stride: stride,
                           padTop: top, padBottom: bottom, padLeft: left, padRight: right)
        }
    }

    static let cases: [Case] = [
        Case(batch: 2, c: 64, o: 64, h: 20, w: 18, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
        Case(batch: 1, c: 32, o: 48, h: 17, w: 9, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
        Case(batch: 1, c: 16, o: 32, h: 16, w: 14, k: 3, stride: 2, top: 0, bottom: 1, left: 0, right: 1),
        Case(batch: 2, c: 8, o: 3, h: 12, w: 10, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1),   // conv_out-like
        Case(batch: 1, c: 4, o: 32, h: 8, w: 8, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1),    // conv_in-like
        Case(batch: 2, c: 48, o: 32, h: 9, w: 7, k: 1, stride: 1, top: 0, bottom: 0, left: 0, right: 0),   // 1×1 shortcut
    ]

    private func naive(_ t: Case, _ x: [Float], _ w: [Float], _ b: [Float]?) -> [Double] {
        Naive.conv2d(x, w, b, batch: t.batch, c: t.c, o: t.o, h: t.h, wd: t.w, k: t.k, stride: t.stride,
                     top: t.top, bottom: t.bottom, left: t.left, right: t.right)
    }

    @Test(arguments: cases)
    func bf16KernelMatchesNaiveConvolution(t: Case) throws {
        let g = t.geometry
        var rng = TestRandom(seed: UInt64(t.c * 31 + t.o * 5 + t.h * 7 + t.w + t.stride))
        let x = rng.values(t.batch * t.c * t.h * t.w), b = rng.values(t.o)
        let bits = rng.values(t.o * t.c * t.k * t.k, scale: 0.1).map(bf16Bits), w = widened(bits)
        let outCount = t.batch * t.o * g.outHeight * g.outWidth
        let start = rng.values(outCount)
        let count = g.bf16DNNLScratchCount
        var scratch = [Float](repeating: .nan, count: max(count, 1))
        var y = [Float](repeating: .nan, count: outCount)
        let served = conv2dDNNL(&y, x, bf16: bits, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, threads: 2)
        guard DNNL.hasBF16DotProducts, count > 0 else {
            #expect(!served && y.allSatisfy(\.isNaN), "no bf16 kernel here, yet \(t) was computed")
            // conv2d(half:) widens the weight for the float32 kernels instead
            let need = g.scratchCount(half: .bf16, bf16DotProducts: true)
            var big = [Float](repeating: .nan, count: need)
            withHalf(bits, format: .bf16, shape: [t.o, t.c, t.k, t.k]) {
                conv2d(&y, x, half: $0, b, batch: t.batch, geometry: g, scratch: &big, scratchCount: need, bf16DotProducts: true)
            }
            expectClose(y, naive(t, x, w, b), rtol: 1e-5)
            return
        }
        try #require(served, "oneDNN refused \(t) with its own scratch size")
        let rounded = x.map { widened([bf16Bits($0)])[0] }
        expectClose(y, naive(t, rounded, w, b), rtol: 1e-5)
        expectClose(y, naive(t, x, w, b), rtol: 1e-2)
        var sum = start
        #expect(conv2dDNNL(&sum, x, bf16: bits, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count,
                           accumulate: true, threads: 2))
        expectClose(sum, zip(naive(t, rounded, w, b), start).map { $0 + Double($1) }, rtol: 1e-5)
        var noBias = [Float](repeating: .nan, count: outCount)
        #expect(conv2dDNNL(&noBias, x, bf16: bits, nil, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, threads: 2))
        expectClose(noBias, naive(t, rounded, w, nil), rtol: 1e-5)
        // through conv2d(half:): the same bits
        var viaHalf = [Float](repeating: .nan, count: outCount)
        let need = g.scratchCount(half: .bf16, bf16DotProducts: true)
        var big = [Float](repeating: .nan, count: need)
        withHalf(bits, format: .bf16, shape: [t.o, t.c, t.k, t.k]) {
            conv2d(&viaHalf, x, half: $0, b, batch: t.batch, geometry: g, scratch: &big, scratchCount: need, bf16DotProducts: true)
        }
        #expect(viaHalf == y)
    }

    /// An item's output is the same bits alone or in a batch of up to 4, at 1 or 2 threads.
    @Test func bf16KernelIndependentOfBatchAndThreads() throws {
        let g = Conv2dGeometry(inChannels: 64, outChannels: 64, height: 24, width: 20, kernel: 3, padding: 1)
        guard DNNL.hasBF16DotProducts else { return }
        let count = g.bf16DNNLScratchCount
        try #require(count > 0, "oneDNN refused \(g)")
        var rng = TestRandom(seed: 23)
        let n = 64 * 24 * 20
        let x = rng.values(4 * n), bits = rng.values(64 * 64 * 9, scale: 0.1).map(bf16Bits), b = rng.values(64)
        var scratch = [Float](repeating: 0, count: count)
        var solo: [[Float]] = []
        for item in 0..<4 {
            var one = [Float](repeating: .nan, count: n)
            #expect(conv2dDNNL(&one, Array(x[(item * n)..<((item + 1) * n)]), bf16: bits, b, batch: 1, geometry: g,
                               scratch: &scratch, scratchCount: count, threads: 1))
            solo.append(one)
        }
        for batch in 1...4 {
            for threads in [1, 2] {
                var all = [Float](repeating: .nan, count: batch * n)
                #expect(conv2dDNNL(&all, Array(x[0..<(batch * n)]), bf16: bits, b, batch: batch, geometry: g,
                                   scratch: &scratch, scratchCount: count, threads: threads))
                for item in 0..<batch {
                    #expect(Array(all[(item * n)..<((item + 1) * n)]) == solo[item], "batch \(batch), item \(item), \(threads) threads")
                }
            }
        }
    }

    /// Row strips of the bf16 kernel: every strip height gives the naive convolution over the rounded values, and a
    /// batch item's result is the same alone at 1 thread as in the batch at 2.
    @Test func bf16KernelRowStripsMatchNaiveConvolution() throws {
        guard DNNL.hasBF16DotProducts else { return }
        for (top, bottom) in [(1, 1), (2, 0), (0, 2)] {
            let g = Conv2dGeometry(inChannels: 32, outChannels: 48, height: 23, width: 13, kernel: 3,
                                   padTop: top, padBottom: bottom, padLeft: 1, padRight: 1)
            var rng = TestRandom(seed: UInt64(41 + top * 3 + bottom))
            let n = 32 * 23 * 13, m = 48 * g.outHeight * 13
            let x = rng.values(2 * n), bits = rng.values(48 * 32 * 9, scale: 0.1).map(bf16Bits), b = rng.values(48)
            let rounded = x.map { widened([bf16Bits($0)])[0] }
            let expected = Naive.conv2d(rounded, widened(bits), b, batch: 2, c: 32, o: 48, h: 23, wd: 13, k: 3, stride: 1,
                                        top: top, bottom: bottom, left: 1, right: 1)
            for rows in [1, 4, 5, 8, g.outHeight - 1] {
                var count = 0
                for s in Set(g.dnnlStrips(rows: rows).map(\.geometry)) {
                    let conv = try #require(dnnlConv2d(s, kind: .directBF16, bias: true, accumulate: false, inputRows: 23,
                                                       outputRows: g.outHeight), "oneDNN refused the strip \(s)")
                    count = max(count, conv.scratchBytes / 4 + 16)
                }
                var scratch = [Float](repeating: .nan, count: count)
                var y = [Float](repeating: .nan, count: 2 * m)
                #expect(conv2dDNNL(&y, x, bits, b, batch: 2, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: false, kind: .directBF16, threads: 2, stripRows: rows))
                expectClose(y, expected, rtol: 1e-5)
                var second = [Float](repeating: .nan, count: m)
                #expect(conv2dDNNL(&second, Array(x[n...]), bits, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: false, kind: .directBF16, threads: 1, stripRows: rows))
                #expect(second == Array(y[m...]), "rows \(rows): the second item alone at 1 thread differs from the batch at 2")
            }
        }
    }

    /// Images taller than `bf16StripMaxRows` run in strips of that many rows by default (a smaller scratch than the
    /// whole image's), with the naive convolution's numbers; batch items alone = batched.
    @Test func bf16KernelTallImagesRunInStrips() throws {
        guard DNNL.hasBF16DotProducts else { return }
        let g = Conv2dGeometry(inChannels: 16, outChannels: 32, height: 150, width: 12, kernel: 3, padding: 1)
        #expect(g.bf16StripRows == bf16StripMaxRows)
        let count = g.bf16DNNLScratchCount
        #expect(count > 0 && count < g.dnnlScratchCount(.directBF16))
        var rng = TestRandom(seed: 57)
        let n = 16 * 150 * 12, m = 32 * 150 * 12
        let x = rng.values(2 * n), bits = rng.values(32 * 16 * 9, scale: 0.1).map(bf16Bits), b = rng.values(32)
        let rounded = x.map { widened([bf16Bits($0)])[0] }
        var scratch = [Float](repeating: .nan, count: count)
        var y = [Float](repeating: .nan, count: 2 * m)
        #expect(conv2dDNNL(&y, x, bf16: bits, b, batch: 2, geometry: g, scratch: &scratch, scratchCount: count, threads: 2))
        expectClose(y, Naive.conv2d(rounded, widened(bits), b, batch: 2, c: 16, o: 32, h: 150, wd: 12, k: 3, stride: 1,
                                    top: 1, bottom: 1, left: 1, right: 1), rtol: 1e-5)
        var second = [Float](repeating: .nan, count: m)
        #expect(conv2dDNNL(&second, Array(x[n...]), bf16: bits, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: count, threads: 1))
        #expect(second == Array(y[m...]))
    }

    /// The widening path (f16 weights; bf16 where the CPU has no bf16 dot products or they are switched off) gives
    /// the float32 kernels' bits over the widened weight, whichever kernel the geometry takes (im2col, our Winograd,
    /// oneDNN's Winograd, 1×1), with and without `accumulate`; and it stays within the naive convolution's reach.
    @Test(arguments: [HalfMatrix.Format.bf16, .f16])
    func widenedWeightsGiveTheFloatKernelsBits(format: HalfMatrix.Format) throws {
        let geometries = [
            Conv2dGeometry(inChannels: 16, outChannels: 24, height: 11, width: 9, kernel: 3, padding: 1),       // im2col
            Conv2dGeometry(inChannels: 256, outChannels: 256, height: 32, width: 32, kernel: 3, padding: 1),    // Winograd F(2×2)
            Conv2dGeometry(inChannels: 128, outChannels: 128, height: 128, width: 128, kernel: 3, padding: 1),  // oneDNN Winograd (AVX-512)
            Conv2dGeometry(inChannels: 48, outChannels: 32, height: 9, width: 7, kernel: 1, padding: 0),        // 1×1
        ]
        for g in geometries {
            var rng = TestRandom(seed: UInt64(g.inChannels + g.height))
            let x = rng.values(g.inChannels * g.height * g.width), b = rng.values(g.outChannels)
            let values = rng.values(g.outChannels * g.patchLength, scale: 0.05)
            let bits = format == .bf16 ? values.map(bf16Bits) : values.map { Float16($0).bitPattern }
            let w = format == .bf16 ? widened(bits) : bits.map { Float(Float16(bitPattern: $0)) }
            let outCount = g.outChannels * g.outHeight * g.outWidth
            let start = rng.values(outCount)
            for accumulate in [false, true] {
                var plainScratch = [Float](repeating: 0, count: max(g.scratchCount(), 1))
                var expected = accumulate ? start : [Float](repeating: .nan, count: outCount)
                conv2d(&expected, x, w, b, batch: 1, geometry: g, scratch: &plainScratch, scratchCount: plainScratch.count,
                       accumulate: accumulate)
                let need = g.scratchCount(half: format, bf16DotProducts: false)
                #expect(need == g.widenedWeightCount + g.scratchCount())
                var scratch = [Float](repeating: .nan, count: need)
                var y = accumulate ? start : [Float](repeating: .nan, count: outCount)
                withHalf(bits, format: format, shape: [g.outChannels, g.inChannels, g.kernel, g.kernel]) {
                    conv2d(&y, x, half: $0, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: need,
                           accumulate: accumulate, bf16DotProducts: false)
                }
                #expect(y == expected, "\(format) \(g) accumulate \(accumulate)")
            }
            if g.height <= 11 {
                var scratch = [Float](repeating: .nan, count: g.scratchCount(half: format, bf16DotProducts: false))
                var y = [Float](repeating: .nan, count: outCount)
                withHalf(bits, format: format, shape: [g.outChannels, g.inChannels, g.kernel, g.kernel]) {
                    conv2d(&y, x, half: $0, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count,
                           bf16DotProducts: false)
                }
                expectClose(y, Naive.conv2d(x, w, b, batch: 1, c: g.inChannels, o: g.outChannels, h: g.height, wd: g.width,
                                            k: g.kernel, stride: 1, top: g.padTop, bottom: g.padBottom, left: g.padLeft,
                                            right: g.padRight), rtol: 1e-5)
            }
        }
    }

    /// Which path a 16-bit weight takes: oneDNN's bf16 kernel for bf16 on CPUs with bf16 dot products, widening
    /// for f16, when switched off, or elsewhere.
    @Test func choosesThePathByFormatAndCPU() {
        let g = Conv2dGeometry(inChannels: 128, outChannels: 128, height: 64, width: 64, kernel: 3, padding: 1)
        #expect(g.prefersBF16DNNL(.bf16, bf16DotProducts: true) == DNNL.hasBF16DotProducts)
        #expect(!g.prefersBF16DNNL(.bf16, bf16DotProducts: false))
        #expect(!g.prefersBF16DNNL(.f16, bf16DotProducts: true))
        if DNNL.hasBF16DotProducts {
            // the bf16 kernel's scratch holds the blocked bf16 input, the float32 output and the bf16 weight
            #expect(g.scratchCount(half: .bf16, bf16DotProducts: true) >= 128 * 64 * 64 / 2 + 128 * 64 * 64)
        }
    }
}
