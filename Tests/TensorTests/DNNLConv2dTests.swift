import Testing
@testable import Tensor

// oneDNN's convolutions (Winograd F(4×4, 3×3) and direct, DNNLConv2d.swift) against the naive convolution, and
// their independence from batch size and thread count.
@Suite struct DNNLConv2dTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var kind: DNNLConvolution
        var batch, c, o, h, w, stride, top, bottom, left, right: Int
        var testDescription: String { "\(kind) \(batch)x\(c)->\(o) \(h)x\(w) s\(stride) pad(\(top),\(bottom),\(left),\(right))" }
    }

    static let cases: [Case] = [
        Case(kind: .winograd, batch: 2, c: 64, o: 64, h: 20, w: 18, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
        Case(kind: .winograd, batch: 1, c: 64, o: 128, h: 13, w: 11, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
        Case(kind: .direct, batch: 2, c: 32, o: 48, h: 17, w: 9, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
        Case(kind: .direct, batch: 1, c: 16, o: 32, h: 16, w: 14, stride: 2, top: 0, bottom: 1, left: 0, right: 1),
        Case(kind: .direct, batch: 1, c: 3, o: 16, h: 9, w: 7, stride: 1, top: 1, bottom: 1, left: 1, right: 1),
    ]

    func geometry(_ t: Case) -> Conv2dGeometry {
        Conv2dGeometry(inChannels: t.c, outChannels: t.o, height: t.h, width: t.w, kernel: 3, stride: t.stride,
                       padTop: t.top, padBottom: t.bottom, padLeft: t.left, padRight: t.right)
    }

    @Test(arguments: cases)
    func matchesNaiveConvolution(t: Case) throws {
        var rng = TestRandom(seed: UInt64(t.c * 31 + t.h * 7 + t.w + t.stride))
        let x = rng.values(t.batch * t.c * t.h * t.w), w = rng.values(t.o * t.c * 9, scale: 0.1), b = rng.values(t.o)
        let start = rng.values(t.batch * t.o * geometry(t).outHeight * geometry(t).outWidth)
        let g = geometry(t)
        let count = g.dnnlScratchCount(t.kind)
        guard count > 0 else {
            // oneDNN's Winograd kernel exists on avx512_core only; the direct kernel everywhere.
            #expect(t.kind == .winograd && !DNNL.hasAVX512, "oneDNN refused \(t)")
            return
        }
        var scratch = [Float](repeating: .nan, count: count)
        let naive = Naive.conv2d(x, w, b, batch: t.batch, c: t.c, o: t.o, h: t.h, wd: t.w, k: 3, stride: t.stride,
                                 top: t.top, bottom: t.bottom, left: t.left, right: t.right)
        // Winograd F(4×4, 3×3)'s transforms cost a few more float32 roundings than a direct sum.
        let rtol = t.kind == .winograd ? 5e-5 : 1e-5
        var y = [Float](repeating: .nan, count: naive.count)
        #expect(conv2dDNNL(&y, x, w, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, kind: t.kind, threads: 2))
        expectClose(y, naive, rtol: rtol)
        var sum = start
        #expect(conv2dDNNL(&sum, x, w, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count,
                           accumulate: true, kind: t.kind, threads: 2))
        expectClose(sum, zip(naive, start).map { $0 + Double($1) }, rtol: rtol)
        var noBias = [Float](repeating: .nan, count: naive.count)
        #expect(conv2dDNNL(&noBias, x, w, nil, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, kind: t.kind, threads: 2))
        let plain = Naive.conv2d(x, w, nil, batch: t.batch, c: t.c, o: t.o, h: t.h, wd: t.w, k: 3, stride: t.stride,
                                 top: t.top, bottom: t.bottom, left: t.left, right: t.right)
        expectClose(noBias, plain, rtol: rtol)
        // through conv2d's algorithm switch
        let algorithm: Conv2dAlgorithm = t.kind == .winograd ? .dnnlWinograd : .dnnlDirect
        var viaConv = [Float](repeating: .nan, count: naive.count)
        conv2d(&viaConv, x, w, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, algorithm: algorithm)
        #expect(viaConv == y)
    }

    /// An item's output is the same bits alone or in a batch, at 1 or 2 threads.
    @Test(arguments: [DNNLConvolution.winograd, .direct])
    func independentOfBatchAndThreads(kind: DNNLConvolution) throws {
        let g = Conv2dGeometry(inChannels: 64, outChannels: 64, height: 24, width: 20, kernel: 3, padding: 1)
        let count = g.dnnlScratchCount(kind)
        guard count > 0 else {
            #expect(kind == .winograd && !DNNL.hasAVX512)
            return
        }
        var rng = TestRandom(seed: 21)
        let n = 64 * 24 * 20
        let x = rng.values(3 * n), w = rng.values(64 * 64 * 9, scale: 0.1), b = rng.values(64)
        var scratch = [Float](repeating: 0, count: count)
        var all = [Float](repeating: .nan, count: 3 * n)
        #expect(conv2dDNNL(&all, x, w, b, batch: 3, geometry: g, scratch: &scratch, scratchCount: count, kind: kind, threads: 2))
        for item in 0..<3 {
            for threads in [1, 2] {
                var one = [Float](repeating: .nan, count: n)
                let xi = Array(x[(item * n)..<((item + 1) * n)])
                #expect(conv2dDNNL(&one, xi, w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: count, kind: kind, threads: threads))
                #expect(one == Array(all[(item * n)..<((item + 1) * n)]), "item \(item), \(threads) threads")
            }
        }
    }

    /// Row strips (how large images run within the scratch limit): every strip height, including ones that leave a
    /// short last strip and ones that are not multiples of Winograd's 4-row tile, gives the naive convolution, with
    /// and without `accumulate` and bias, at any padding the kernel takes; and strips depend only on the geometry,
    /// so a batch item's result is the same alone or batched.
    @Test(arguments: [DNNLConvolution.winograd, .direct])
    func rowStripsMatchNaiveConvolution(kind: DNNLConvolution) throws {
        let pads = kind == .winograd ? [(1, 1), (0, 1), (1, 0)] : [(1, 1), (2, 0), (0, 2)]
        for (top, bottom) in pads {
            let g = Conv2dGeometry(inChannels: 32, outChannels: 48, height: 23, width: 13, kernel: 3,
                                   padTop: top, padBottom: bottom, padLeft: 1, padRight: 1)
            guard g.dnnlStripRows(kind) != nil else {
                #expect(kind == .winograd && !DNNL.hasAVX512, "oneDNN refused \(g)")
                return
            }
            var rng = TestRandom(seed: UInt64(17 + top * 3 + bottom))
            let n = 32 * 23 * 13, m = 48 * g.outHeight * 13
            let x = rng.values(2 * n), w = rng.values(48 * 32 * 9, scale: 0.1), b = rng.values(48), start = rng.values(2 * m)
            let naive = Naive.conv2d(x, w, b, batch: 2, c: 32, o: 48, h: 23, wd: 13, k: 3, stride: 1,
                                     top: top, bottom: bottom, left: 1, right: 1)
            let plain = Naive.conv2d(x, w, nil, batch: 2, c: 32, o: 48, h: 23, wd: 13, k: 3, stride: 1,
                                     top: top, bottom: bottom, left: 1, right: 1)
            let rtol = kind == .winograd ? 5e-5 : 1e-5
            for rows in [1, 4, 5, 8, 12, g.outHeight - 1] {
                let strips = g.dnnlStrips(rows: rows)
                #expect(strips.count == (g.outHeight + rows - 1) / rows)
                #expect(strips.map(\.geometry.outHeight).reduce(0, +) == g.outHeight)
                // scratch for the largest strip
                var count = 0
                for s in Set(strips.map(\.geometry)) {
                    for (bias, acc) in [(true, false), (true, true), (false, false)] {
                        let conv = try #require(dnnlConv2d(s, kind: kind, bias: bias, accumulate: acc, inputRows: 23, outputRows: g.outHeight),
                                                "oneDNN refused the strip \(s)")
                        count = max(count, conv.scratchBytes / 4 + 16)
                    }
                }
                var scratch = [Float](repeating: .nan, count: count)
                var y = [Float](repeating: .nan, count: 2 * m)
                #expect(conv2dDNNL(&y, x, w, b, batch: 2, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: false, kind: kind, threads: 2, stripRows: rows))
                expectClose(y, naive, rtol: rtol)
                var sum = start
                #expect(conv2dDNNL(&sum, x, w, b, batch: 2, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: true, kind: kind, threads: 2, stripRows: rows))
                expectClose(sum, zip(naive, start).map { $0 + Double($1) }, rtol: rtol)
                var noBias = [Float](repeating: .nan, count: 2 * m)
                #expect(conv2dDNNL(&noBias, x, w, nil, batch: 2, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: false, kind: kind, threads: 2, stripRows: rows))
                expectClose(noBias, plain, rtol: rtol)
                var second = [Float](repeating: .nan, count: m)
                #expect(conv2dDNNL(&second, Array(x[n...]), w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: count,
                                   accumulate: false, kind: kind, threads: 1, stripRows: rows))
                #expect(second == Array(y[m...]), "rows \(rows): the second item alone at 1 thread differs from the batch at 2")
            }
        }
    }

    /// A convolution run strip by strip from and into buffers of one strip (how the decoders make an upsampled
    /// input or use the output strip by strip) gives `conv2dDNNL`'s result bit for bit, for any strip height.
    @Test(arguments: [DNNLConvolution.winograd, .direct])
    func stripByStripFromAndIntoStripBuffers(kind: DNNLConvolution) throws {
        let g = Conv2dGeometry(inChannels: 32, outChannels: 48, height: 23, width: 13, kernel: 3, padding: 1)
        guard g.dnnlStripRows(kind) != nil else {
            #expect(kind == .winograd && !DNNL.hasAVX512, "oneDNN refused \(g)")
            return
        }
        var rng = TestRandom(seed: 37)
        let n = 32 * 23 * 13, m = 48 * 23 * 13
        let x = rng.values(2 * n), w = rng.values(48 * 32 * 9, scale: 0.1), b = rng.values(48)
        for rows in [4, 5, 8, 23] {
            var count = 0
            for s in Set(g.dnnlStrips(rows: rows).map(\.geometry)) {
                for (inRows, outRows) in [(23, 23), (s.height, 23), (23, s.outHeight)] {
                    let conv = try #require(dnnlConv2d(s, kind: kind, bias: true, accumulate: false, inputRows: inRows, outputRows: outRows))
                    count = max(count, conv.scratchBytes / 4 + 16)
                }
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)   // the runs keep pointing into it
            defer { scratch.deallocate() }
            var whole = [Float](repeating: .nan, count: 2 * m)
            #expect(conv2dDNNL(&whole, x, w, b, batch: 2, geometry: g, scratch: scratch, scratchCount: count,
                               accumulate: false, kind: kind, threads: 2, stripRows: rows))
            // input strips copied out of the planes, output written whole
            var fromStrips = [Float](repeating: .nan, count: 2 * m)
            var a = try #require(DNNLStripConvolution(geometry: g, kind: kind, bias: true, accumulate: false, stripRows: rows,
                                                      wholeInput: false, scratch: scratch, scratchCount: count))
            for item in 0..<2 {
                for (i, strip) in a.strips.enumerated() {
                    let sh = strip.geometry.height
                    var input: [Float] = []
                    for c in 0..<32 {
                        let start = item * n + (c * 23 + strip.firstInputRow) * 13
                        input += x[start..<(start + sh * 13)]
                    }
                    fromStrips.withUnsafeMutableBufferPointer { y in
                        let ran = a.run(i, y: y.baseAddress! + item * m + strip.firstOutputRow * 13, x: input, w: w, b: b, threads: 2)
                        #expect(ran)
                    }
                }
            }
            #expect(fromStrips == whole, "\(rows) rows, input strips")
            // input read from the planes, output handed over a strip at a time
            var intoStrips = [Float](repeating: .nan, count: 2 * m)
            var o = try #require(DNNLStripConvolution(geometry: g, kind: kind, bias: true, accumulate: false, stripRows: rows,
                                                      wholeOutput: false, scratch: scratch, scratchCount: count))
            for item in 0..<2 {
                for (i, strip) in o.strips.enumerated() {
                    let sh = strip.geometry.outHeight
                    var out = [Float](repeating: .nan, count: 48 * sh * 13)
                    x.withUnsafeBufferPointer { xp in
                        let ran = o.run(i, y: &out, x: xp.baseAddress! + item * n + strip.firstInputRow * 13, w: w, b: b, threads: 1)
                        #expect(ran)
                    }
                    for c in 0..<48 {
                        let start = item * m + (c * 23 + strip.firstOutputRow) * 13
                        intoStrips.replaceSubrange(start..<(start + sh * 13), with: out[(c * sh * 13)..<((c + 1) * sh * 13)])
                    }
                }
            }
            #expect(intoStrips == whole, "\(rows) rows, output strips")
        }
    }

    /// The strip plan: a whole image when its scratch fits the limit; otherwise strips of a multiple of 4 rows whose
    /// scratch fits.
    @Test func stripPlanKeepsScratchWithinLimit() {
        guard DNNL.hasAVX512 else { return }
        let small = Conv2dGeometry(inChannels: 128, outChannels: 128, height: 128, width: 128, kernel: 3, padding: 1)
        #expect(small.dnnlStripRows(.winograd) == 128)
        let big = Conv2dGeometry(inChannels: 256, outChannels: 256, height: 512, width: 512, kernel: 3, padding: 1)
        let rows = big.dnnlStripRows(.winograd)
        #expect(rows != nil, "oneDNN refused every strip of \(big)")
        if let rows {
            #expect(rows < 512 && rows % 4 == 0)
            #expect(big.dnnlScratchCount(.winograd) <= big.dnnlScratchLimit(.winograd))
        }
    }

    /// The automatic choice: oneDNN's Winograd for wide layers on large images (CPUs with AVX-512), our own kernels
    /// for small images, few channels or a scratch over the limit.
    @Test func automaticChoosesByShape() {
        let big = Conv2dGeometry(inChannels: 256, outChannels: 256, height: 128, width: 128, kernel: 3, padding: 1)
        let on = DNNL.hasAVX512 && dnnlConvolutionsEnabled
        #expect((big.prefersDNNL == .winograd) == on)
        if on {
            #expect(big.scratchCount() >= big.dnnlScratchCount(.winograd))
            #expect(big.dnnlScratchCount(.winograd) <= big.dnnlScratchLimit(.winograd))
        }
        #expect(Conv2dGeometry(inChannels: 512, outChannels: 512, height: 64, width: 64, kernel: 3, padding: 1).prefersDNNL == nil)
        #expect(Conv2dGeometry(inChannels: 64, outChannels: 64, height: 256, width: 256, kernel: 3, padding: 1).prefersDNNL == nil)
        #expect(Conv2dGeometry(inChannels: 128, outChannels: 3, height: 256, width: 256, kernel: 3, padding: 1).prefersDNNL == nil)
        // 128 channels at 1024²: several GiB of scratch in one piece, so row strips within the limit
        let huge = Conv2dGeometry(inChannels: 128, outChannels: 128, height: 1024, width: 1024, kernel: 3, padding: 1)
        #expect((huge.prefersDNNL == .winograd) == on)
        if on { #expect(huge.scratchCount() <= max(1 << 23, huge.dnnlScratchLimit(.winograd))) }
    }

    /// Too little scratch: refused (false), nothing written; conv2d then falls back to its own kernels.
    @Test func refusesSmallScratch() {
        let g = Conv2dGeometry(inChannels: 64, outChannels: 64, height: 8, width: 8, kernel: 3, padding: 1)
        var rng = TestRandom(seed: 2)
        let x = rng.values(64 * 64), w = rng.values(64 * 64 * 9), b = rng.values(64)
        var scratch = [Float](repeating: 0, count: g.minimumScratch)
        var y = [Float](repeating: .nan, count: 64 * 64)
        #expect(!conv2dDNNL(&y, x, w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count, kind: .direct, threads: 2))
        #expect(y.allSatisfy { $0.isNaN })
        conv2d(&y, x, w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count, algorithm: .dnnlDirect)
        expectClose(y, Naive.conv2d(x, w, b, batch: 1, c: 64, o: 64, h: 8, wd: 8, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1))
    }
}
