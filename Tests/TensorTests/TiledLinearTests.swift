import Foundation
import Testing
@testable import Tensor

// The float32 linear layer in single-threaded tiles (oneDNN matmul for an item's first multiple of 64 rows, OpenBLAS
// sgemm for the rest, or sgemm throughout) against the naive fp64 loop, and its independence from batch size and
// thread count.

@Suite struct TiledLinearTests {
    private func problem(m: Int, k: Int, o: Int, seed: UInt64) -> (x: [Float], w: [Float], b: [Float]) {
        var rng = TestRandom(seed: seed)
        return (rng.values(m * k), rng.values(o * k, scale: 0.2), rng.values(o))
    }

    private func run(_ p: (x: [Float], w: [Float], b: [Float]), bias: Bool = true, m: Int, k: Int, o: Int,
                     groupRows: Int? = nil, threads: Int, dnnl: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: m * o)
        linearTiles(&y, p.x, p.w, bias ? p.b : nil, rows: m, inFeatures: k, outFeatures: o, groupRows: groupRows,
                    threads: threads, dnnl: dnnl)
        return y
    }

    @Test func columnBlocksDependOnTheLayerAloneAndFallOnMultiplesOf16() {
        #expect(linearTileColumns(outFeatures: 48) == [0, 48])
        #expect(linearTileColumns(outFeatures: 1152) == [0, 576, 1152])
        #expect(linearTileColumns(outFeatures: 5760) == [0, 1440, 2880, 4320, 5760])
        for o in [1, 255, 256, 300, 2047, 2048, 4608, 6912] {
            let c = linearTileColumns(outFeatures: o)
            #expect(c.first == 0 && c.last == o, "\(o)")
            #expect(zip(c, c.dropFirst()).allSatisfy { $0 < $1 }, "\(o): \(c)")
            #expect(c.dropFirst().dropLast().allSatisfy { $0 % 16 == 0 }, "\(o): \(c)")
        }
    }

    /// Items of 1 row (sgemm only), 150 rows (128 through oneDNN + 22 through sgemm), several column blocks.
    @Test(arguments: [(1, 64, 48), (150, 96, 300), (70, 128, 2100), (64, 2304, 40)])
    func matchesNaive(shape: (Int, Int, Int)) {
        let (m, k, o) = shape
        let p = problem(m: m, k: k, o: o, seed: UInt64(m * 7 + k))
        let expected = Naive.linear(p.x, p.w, p.b, m: m, k: k, o: o)
        let unbiased = Naive.linear(p.x, p.w, nil, m: m, k: k, o: o)
        for dnnl in [true, false] {
            expectClose(run(p, m: m, k: k, o: o, threads: 2, dnnl: dnnl), expected, rtol: 1e-5)
            expectClose(run(p, bias: false, m: m, k: k, o: o, threads: 2, dnnl: dnnl), unbiased, rtol: 1e-5)
        }
    }

    /// Each item of a batch of 1...8 (77 tokens: 64 rows through oneDNN, 13 through sgemm; 320 outputs: two column
    /// blocks) comes out bit for bit as when it runs alone on one thread, at 1 and 2 threads, on both paths.
    @Test(arguments: [true, false])
    func anItemsBitsDoNotDependOnItsBatchOrTheThreadCount(dnnl: Bool) {
        let tokens = 77, k = 256, o = 320
        let p = problem(m: 8 * tokens, k: k, o: o, seed: 5)
        let solo = (0..<8).map { item in
            let xi = Array(p.x[(item * tokens * k)..<((item + 1) * tokens * k)])
            return run((xi, p.w, p.b), m: tokens, k: k, o: o, threads: 1, dnnl: dnnl)
        }
        for batch in 1...8 {
            for threads in [1, 2] {
                let xb = Array(p.x[0..<(batch * tokens * k)])
                let y = run((xb, p.w, p.b), m: batch * tokens, k: k, o: o, groupRows: tokens, threads: threads, dnnl: dnnl)
                for item in 0..<batch {
                    #expect(Array(y[(item * tokens * o)..<((item + 1) * tokens * o)]) == solo[item],
                            "dnnl \(dnnl), batch \(batch), \(threads) threads, item \(item)")
                }
            }
        }
    }

    /// The epilogue on a tile gives the very bits of the separate pass over the whole output.
    @Test func epilogueEqualsTheSeparatePass() {
        let m = 150, k = 96, o = 2100
        let p = problem(m: m, k: k, o: o, seed: 3)
        for dnnl in [true, false] {
            let plain = run(p, m: m, k: k, o: o, threads: 2, dnnl: dnnl)
            var y = [Float](repeating: .nan, count: m * o)
            linearTiles(&y, p.x, p.w, p.b, rows: m, inFeatures: k, outFeatures: o, threads: 2, epilogue: .silu, dnnl: dnnl)
            var expected = plain
            silu(&expected, plain, count: m * o)
            #expect(y == expected, "silu, dnnl \(dnnl)")
            linearTiles(&y, p.x, p.w, p.b, rows: m, inFeatures: k, outFeatures: o, threads: 2, epilogue: .geluTanh, dnnl: dnnl)
            var gelu = plain
            geluTanh(&gelu, plain, count: m * o)
            #expect(y == gelu, "geluTanh, dnnl \(dnnl)")
        }
    }

    /// On an AVX-512 CPU the transformers' tile shapes get oneDNN's brgemm kernel (a row stride on the output would
    /// send them to its slower gemm:jit fallback: the tiles write a dense block).
    @Test func oneDNNServesTheTransformerShapes() {
        guard DNNL.hasAVX512 else { return }
        for (m, k, n) in [(256, 1152, 576), (256, 1152, 1440), (256, 2880, 576), (1024, 1152, 576), (1024, 4608, 576)] {
            let impl = linearTileImplementation(rows: m, inFeatures: k, columns: n, bias: true)
            #expect(impl?.hasPrefix("brg") == true, "oneDNN float32 matmul for \(m)×\(k)·\(k)×\(n): \(impl ?? "none")")
        }
    }
}
