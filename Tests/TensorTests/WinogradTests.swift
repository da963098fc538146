import Testing
@testable import Tensor

// The Winograd F(2×2, 3×3) kernel against the naive convolution and against the im2col reference.
@Suite struct WinogradConv2dTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var batch, c, o, h, w, top, bottom, left, right: Int
        var oneTileRowScratch: Bool
        var testDescription: String { "\(batch)x\(c)->\(o) \(h)x\(w) pad(\(top),\(bottom),\(left),\(right)) oneRow:\(oneTileRowScratch)" }
    }

    static let cases: [Case] = [
        Case(batch: 2, c: 3, o: 5, h: 7, w: 9, top: 1, bottom: 1, left: 1, right: 1, oneTileRowScratch: false),   // odd sizes
        Case(batch: 1, c: 17, o: 19, h: 8, w: 10, top: 1, bottom: 1, left: 1, right: 1, oneTileRowScratch: true), // chunked
        Case(batch: 1, c: 4, o: 6, h: 11, w: 6, top: 0, bottom: 0, left: 0, right: 0, oneTileRowScratch: false),  // valid
        Case(batch: 2, c: 3, o: 2, h: 5, w: 7, top: 2, bottom: 2, left: 2, right: 2, oneTileRowScratch: true),    // full
        Case(batch: 1, c: 5, o: 3, h: 9, w: 7, top: 0, bottom: 1, left: 0, right: 1, oneTileRowScratch: false),   // asymmetric
        Case(batch: 1, c: 2, o: 2, h: 1, w: 1, top: 1, bottom: 1, left: 1, right: 1, oneTileRowScratch: false),   // 1×1 image
    ]

    func geometry(_ t: Case) -> Conv2dGeometry {
        Conv2dGeometry(inChannels: t.c, outChannels: t.o, height: t.h, width: t.w, kernel: 3,
                       padTop: t.top, padBottom: t.bottom, padLeft: t.left, padRight: t.right)
    }

    @Test(arguments: cases)
    func matchesNaiveConvolution(t: Case) {
        var rng = TestRandom(seed: UInt64(t.c * 31 + t.h * 7 + t.w + t.top))
        let x = rng.values(t.batch * t.c * t.h * t.w), w = rng.values(t.o * t.c * 9), b = rng.values(t.o)
        let g = geometry(t)
        let expected = Naive.conv2d(x, w, b, batch: t.batch, c: t.c, o: t.o, h: t.h, wd: t.w, k: 3, stride: 1,
                                    top: t.top, bottom: t.bottom, left: t.left, right: t.right)
        let count = t.oneTileRowScratch ? g.winogradMinimumScratch : g.winogradScratchCount()
        #expect(!t.oneTileRowScratch || g.winogradChunkRows(scratchCount: count) == 1)
        var scratch = [Float](repeating: .nan, count: count)
        var y = [Float](repeating: .nan, count: expected.count)
        conv2d(&y, x, w, b, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count, algorithm: .winograd)
        expectClose(y, expected)
        var noBias = [Float](repeating: .nan, count: expected.count)
        conv2dWinograd(&noBias, x, w, nil, batch: t.batch, geometry: g, scratch: &scratch, scratchCount: count)
        let plain = Naive.conv2d(x, w, nil, batch: t.batch, c: t.c, o: t.o, h: t.h, wd: t.w, k: 3, stride: 1,
                                 top: t.top, bottom: t.bottom, left: t.left, right: t.right)
        expectClose(noBias, plain)
    }

    @Test func accumulateAddsOntoResidual() {
        var rng = TestRandom(seed: 5)
        let g = Conv2dGeometry(inChannels: 16, outChannels: 16, height: 9, width: 8, kernel: 3, padding: 1)
        let x = rng.values(2 * 16 * 72), w = rng.values(16 * 16 * 9), b = rng.values(16), start = rng.values(2 * 16 * 72)
        var scratch = [Float](repeating: 0, count: g.scratchCount())
        var y = start
        conv2d(&y, x, w, b, batch: 2, geometry: g, scratch: &scratch, scratchCount: scratch.count, accumulate: true,
               algorithm: .winograd)
        let conv = Naive.conv2d(x, w, b, batch: 2, c: 16, o: 16, h: 9, wd: 8, k: 3, stride: 1, top: 1, bottom: 1, left: 1, right: 1)
        expectClose(y, zip(conv, start).map { $0 + Double($1) })
    }

    /// Automatic selection: Winograd for a VAE-like layer (given its scratch), im2col where it does not pay
    /// (few channels) or where the scratch is only im2col's; both agree with the im2col reference.
    @Test func automaticChoosesByShapeAndScratch() {
        let wide = Conv2dGeometry(inChannels: 256, outChannels: 256, height: 32, width: 32, kernel: 3, padding: 1)
        #expect(wide.prefersWinograd)
        #expect(wide.scratchCount() >= wide.winogradMinimumScratch)
        #expect(!Conv2dGeometry(inChannels: 128, outChannels: 128, height: 256, width: 256, kernel: 3, padding: 1).prefersWinograd)
        #expect(!Conv2dGeometry(inChannels: 1024, outChannels: 1024, height: 16, width: 16, kernel: 3, padding: 1).prefersWinograd)
        #expect(!Conv2dGeometry(inChannels: 512, outChannels: 3, height: 64, width: 64, kernel: 3, padding: 1).prefersWinograd)
        #expect(!Conv2dGeometry(inChannels: 512, outChannels: 512, height: 64, width: 64, kernel: 3, stride: 2,
                                padTop: 0, padBottom: 1, padLeft: 0, padRight: 1).prefersWinograd)
        var rng = TestRandom(seed: 8)
        let x = rng.values(256 * 1024), w = rng.values(256 * 256 * 9, scale: 0.05), b = rng.values(256)
        var scratch = [Float](repeating: 0, count: wide.scratchCount())
        var auto = [Float](repeating: .nan, count: 256 * 1024), reference = auto
        conv2d(&auto, x, w, b, batch: 1, geometry: wide, scratch: &scratch, scratchCount: scratch.count)
        conv2d(&reference, x, w, b, batch: 1, geometry: wide, scratch: &scratch, scratchCount: scratch.count, algorithm: .im2col)
        expectClose(auto, reference.map(Double.init))
        #expect(auto != reference)   // the automatic path really took Winograd (other rounding)
    }

    /// Each item's output is the same bits whether it runs alone or in a batch, and whatever the chunking.
    @Test func resultsDoNotDependOnBatchSize() {
        var rng = TestRandom(seed: 21)
        let g = Conv2dGeometry(inChannels: 24, outChannels: 20, height: 13, width: 11, kernel: 3, padding: 1)
        let per = 24 * 13 * 11, outPer = 20 * 13 * 11
        let x = rng.values(3 * per), w = rng.values(20 * 24 * 9), b = rng.values(20)
        var scratch = [Float](repeating: 0, count: g.winogradScratchCount())
        var batched = [Float](repeating: .nan, count: 3 * outPer)
        conv2d(&batched, x, w, b, batch: 3, geometry: g, scratch: &scratch, scratchCount: scratch.count, algorithm: .winograd)
        for item in 0..<3 {
            var alone = [Float](repeating: .nan, count: outPer)
            Array(x[(item * per)..<((item + 1) * per)]).withUnsafeBufferPointer { xi in
                conv2d(&alone, xi.baseAddress!, w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count,
                       algorithm: .winograd)
            }
            #expect(alone == Array(batched[(item * outPer)..<((item + 1) * outPer)]))
        }
    }
}
