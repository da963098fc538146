import Foundation
import Testing
@testable import Tensor

// int8 weights: the per-row quantizer against the textbook rule, the int8 dot-product path (oneDNN, VNNI)
// against a naive integer loop (bit for bit: the sums are exact), the dequantized path against the naive fp64
// loop, and both paths' independence from batch size and thread count.

/// The naive int8 linear layer: each row of x quantized (`quantizeRows`), exact integer dot products, then
/// `int8Output` (the same float32 expression the fast path applies to its int32 sums).
private func naiveInt8Linear(_ x: [Float], _ q: [Int8], _ sw: [Float], _ b: [Float]?, m: Int, k: Int, o: Int) -> [Float] {
    var qx = [Int8](repeating: 0, count: m * k), sx = [Float](repeating: 0, count: m)
    quantizeRows(&qx, &sx, x, rows: m, columns: k)
    var y = [Float](repeating: 0, count: m * o)
    for r in 0..<m {
        for n in 0..<o {
            var acc: Int32 = 0
            for i in 0..<k { acc += Int32(qx[r * k + i]) * Int32(q[n * k + i]) }
            y[r * o + n] = int8Output(acc, sx[r], sw[n], b?[n] ?? 0)
        }
    }
    return y
}

@Suite struct Int8LinearTests {
    /// x, b and the weight quantized per row.
    private func problem(m: Int, k: Int, o: Int, seed: UInt64) -> (x: [Float], q: [Int8], sw: [Float], b: [Float]) {
        var rng = TestRandom(seed: seed)
        let x = rng.values(m * k)
        let w = rng.values(o * k, scale: 0.2)
        var q = [Int8](repeating: 0, count: o * k), sw = [Float](repeating: 0, count: o)
        quantizeRows(&q, &sw, w, rows: o, columns: k)
        return (x, q, sw, rng.values(o))
    }

    private func dequantized(_ q: [Int8], _ sw: [Float], rows: Int, k: Int) -> [Float] {
        (0..<(rows * k)).map { Float(q[$0]) * sw[$0 / k] }
    }

    /// `linearInt8DotProducts` (nil when oneDNN refused), or with `path` the dequantized path / the dispatch.
    private enum Path { case dot, dequantized, dispatch }
    private func run(_ p: (x: [Float], q: [Int8], sw: [Float], b: [Float]), bias: Bool = true, m: Int, k: Int, o: Int,
                     threads: Int, groupRows: Int? = nil, path: Path = .dot) -> [Float]? {
        var y = [Float](repeating: .nan, count: m * o)
        var scratch = [Float](repeating: 0, count: halfLinearScratchCount(inFeatures: k))
        let b = bias ? p.b : nil
        let ok = p.q.withUnsafeBufferPointer { qp in
            p.sw.withUnsafeBufferPointer { sp in
                let w = Int8Matrix(shape: [o, k], pointer: qp.baseAddress!, scales: sp.baseAddress!, owner: p.q as NSArray)
                switch path {
                case .dot:
                    return linearInt8DotProducts(&y, p.x, int8: w, b, rows: m, inFeatures: k, outFeatures: o,
                                                 scratch: &scratch, threads: threads)
                case .dequantized:
                    linearDequantized(&y, p.x, int8: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch,
                                      threads: threads, groupRows: groupRows)
                    return true
                case .dispatch:
                    linear(&y, p.x, int8: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch,
                           threads: threads, groupRows: groupRows)
                    return true
                }
            }
        }
        return ok ? y : nil
    }

    @Test func quantizerIsSymmetricRoundHalfEven() {
        // row 0: max 2.54 → scale 0.02; 0.01 is exactly half a step only in real numbers, so check the rule
        // against Double; row 1 all zeros; row 2 holds a NaN; row 3 an infinity
        let x: [Float] = [2.54, -2.54, 0.01, 0.03, -1.27, 1.0,
                          0, 0, 0, 0, 0, 0,
                          1, .nan, 2, 3, 4, 5,
                          1, .infinity, 2, 3, 4, 5]
        var q = [Int8](repeating: 9, count: x.count), s = [Float](repeating: 9, count: 4)
        quantizeRows(&q, &s, x, rows: 4, columns: 6)
        #expect(s[0] == Float(2.54) / 127)
        for i in 0..<6 {
            let exact = (Double(x[i]) / Double(s[0])).rounded(.toNearestOrEven)
            #expect(abs(Double(q[i]) - exact) <= 1, "x \(x[i])")   // float32 division vs Double: at most a tie apart
            #expect(abs(Float(q[i]) * s[0] - x[i]) <= s[0] / 2 * 1.0001, "x \(x[i])")
        }
        #expect(q[0] == 127 && q[1] == -127)
        #expect(s[1] == 0 && q[6..<12].allSatisfy { $0 == 0 })
        #expect(s[2].isNaN && s[3].isNaN)
        #expect(q[12..<24].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [(1, 64, 48), (300, 96, 200), (17, 2304, 40), (5, 8, 3)])
    func dotProductsMatchNaiveBitForBit(shape: (Int, Int, Int)) throws {
        let (m, k, o) = shape
        let p = problem(m: m, k: k, o: o, seed: UInt64(m * 7 + k))
        guard let y = run(p, m: m, k: k, o: o, threads: 2) else {
            #expect(!DNNL.hasInt8DotProducts, "oneDNN refused an int8 matmul on a CPU with int8 dot products")
            return
        }
        #expect(y == naiveInt8Linear(p.x, p.q, p.sw, p.b, m: m, k: k, o: o))
        let noBias = try #require(run(p, bias: false, m: m, k: k, o: o, threads: 2))
        #expect(noBias == naiveInt8Linear(p.x, p.q, p.sw, nil, m: m, k: k, o: o))
        // and near the float32 product of the unquantized activations with the dequantized weight
        expectClose(y, Naive.linear(p.x, dequantized(p.q, p.sw, rows: o, k: k), p.b, m: m, k: k, o: o), rtol: 2e-2)
    }

    /// A batch item's rows come out bit for bit as when it runs alone, at every batch size, and at 1 and 2
    /// threads alike — on both paths.
    @Test(arguments: [true, false])
    func independentOfBatchAndThreads(dotProducts: Bool) throws {
        let tokens = 77, k = 256, o = 320
        let p = problem(m: 4 * tokens, k: k, o: o, seed: 5)
        let path: Path = dotProducts ? .dot : .dequantized
        guard let all = run(p, m: 4 * tokens, k: k, o: o, threads: 2, groupRows: tokens, path: path) else {
            #expect(!DNNL.hasInt8DotProducts)
            return
        }
        func slice(_ from: Int, _ count: Int) -> (x: [Float], q: [Int8], sw: [Float], b: [Float]) {
            (Array(p.x[(from * k)..<((from + count) * k)]), p.q, p.sw, p.b)
        }
        for item in 0..<4 {
            let solo = try #require(run(slice(item * tokens, tokens), m: tokens, k: k, o: o, threads: 1, path: path))
            #expect(solo == Array(all[(item * tokens * o)..<((item + 1) * tokens * o)]), "item \(item)")
        }
        for batch in 1...3 {
            let yb = try #require(run(slice(0, batch * tokens), m: batch * tokens, k: k, o: o, threads: 2,
                                      groupRows: tokens, path: path))
            #expect(yb == Array(all[0..<(batch * tokens * o)]), "batch \(batch)")
        }
        // a long item (more rows than one activation chunk) at 1 and 2 threads
        let long = problem(m: 600, k: 2304, o: 96, seed: 9)
        let one = try #require(run(long, m: 600, k: 2304, o: 96, threads: 1, path: path))
        let two = try #require(run(long, m: 600, k: 2304, o: 96, threads: 2, path: path))
        #expect(one == two)
    }

    /// The dequantized path (CPUs without int8 dot products, or `DARKROOM_INT8_DOT_PRODUCTS=off`): float32
    /// products of the exact dequantized weight with the activations as they are.
    @Test func dequantizedPathMatchesNaive() throws {
        let m = 5, k = 37, o = 300  // o spans three blocks
        let p = problem(m: m, k: k, o: o, seed: 4)
        let y = try #require(run(p, m: m, k: k, o: o, threads: 2, path: .dequantized))
        expectClose(y, Naive.linear(p.x, dequantized(p.q, p.sw, rows: o, k: k), p.b, m: m, k: k, o: o), rtol: 1e-5)
    }

    /// `linear(int8:)` takes the dot-product path exactly where the CPU has int8 dot products.
    @Test func dispatchFollowsTheCPU() throws {
        let m = 9, k = 64, o = 33
        let p = problem(m: m, k: k, o: o, seed: 2)
        let y = try #require(run(p, m: m, k: k, o: o, threads: 2, path: .dispatch))
        if DNNL.hasInt8DotProducts && int8DotProductsEnabled {
            #expect(y == naiveInt8Linear(p.x, p.q, p.sw, p.b, m: m, k: k, o: o))
            let impl = int8MatmulImplementation(rows: m, inFeatures: k, outFeatures: o) ?? "none"
            #expect(impl.contains("vnni") || impl.contains("amx"), "oneDNN chose \(impl)")
        } else {
            expectClose(y, Naive.linear(p.x, dequantized(p.q, p.sw, rows: o, k: k), p.b, m: m, k: k, o: o), rtol: 1e-5)
        }
    }
}
