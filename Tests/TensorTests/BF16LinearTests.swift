import Foundation
import Testing
@testable import Tensor

// The bf16 dot-product linear layer (oneDNN matmul) against the naive fp64 loop, and its independence from
// batch size and thread count.

/// bf16 bits of `v` by the textbook rule (nearest, ties to even), computed in Double.
private func naiveBF16(_ v: Float) -> UInt16 {
    if v.isNaN { return 0x7fc0 }
    let u = v.bitPattern
    let down = u & 0xffff_0000, up = down &+ 0x1_0000
    if u == down { return UInt16(u >> 16) }
    // the neighbours' values in Double; above the largest finite bf16 the upper one is 2^128 (IEEE overflow)
    let low = Double(Float(bitPattern: down))
    let high = low + (low < 0 ? -1 : 1) * Double(Float(bitPattern: down).ulp) * 65536
    let dd = abs(low - Double(v)), du = abs(high - Double(v))
    if dd < du { return UInt16(down >> 16) }
    if du < dd { return UInt16(up >> 16) }
    return UInt16((down >> 16) & 1 == 0 ? down >> 16 : up >> 16)
}

private func widenBF16(_ bits: [UInt16]) -> [Float] { bits.map { Float(bitPattern: UInt32($0) << 16) } }

@Suite struct BF16LinearTests {
    @Test func roundingIsNearestTiesToEven() {
        var rng = TestRandom(seed: 11)
        var xs = rng.values(4096, scale: 100)
        // exact ties (half-way between two bf16 values) with even and odd lower neighbours, and specials
        xs += [Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0x3f80_7fff),
               .infinity, -.infinity, 0, -0.0, .greatestFiniteMagnitude, Float(bitPattern: 1)]
        var y = [UInt16](repeating: 0, count: xs.count)
        roundToBF16(&y, xs, count: xs.count)
        for (i, x) in xs.enumerated() { #expect(y[i] == naiveBF16(x), "x \(x) bits \(String(x.bitPattern, radix: 16))") }
        var nan = [UInt16](repeating: 0, count: 1)
        roundToBF16(&nan, [Float.nan], count: 1)
        #expect(Float(bitPattern: UInt32(nan[0]) << 16).isNaN)
    }

    /// x, w, b and the bf16 weight; `o` spans several oneDNN blocks, `m` more than one activation chunk.
    private func problem(m: Int, k: Int, o: Int, seed: UInt64) -> (x: [Float], bits: [UInt16], b: [Float]) {
        var rng = TestRandom(seed: seed)
        let x = rng.values(m * k)
        let bits = rng.values(o * k, scale: 0.2).map { naiveBF16($0) }
        return (x, bits, rng.values(o))
    }

    private func run(_ x: [Float], _ bits: [UInt16], _ b: [Float]?, m: Int, k: Int, o: Int, threads: Int,
                     groupRows: Int? = nil) -> [Float]? {
        var y = [Float](repeating: .nan, count: m * o)
        var scratch = [Float](repeating: 0, count: halfLinearScratchCount(inFeatures: k))
        let ok = bits.withUnsafeBufferPointer { wp in
            let w = HalfMatrix(format: .bf16, shape: [o, k], pointer: wp.baseAddress!, owner: bits as NSArray)
            return linearBF16DotProducts(&y, x, bf16: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch,
                                         threads: threads, groupRows: groupRows)
        }
        return ok ? y : nil
    }

    @Test(arguments: [(1, 64, 48), (300, 96, 200), (17, 2304, 40)])
    func matchesNaiveOnRoundedActivations(shape: (Int, Int, Int)) throws {
        let (m, k, o) = shape
        let p = problem(m: m, k: k, o: o, seed: UInt64(m * 7 + k))
        guard let y = run(p.x, p.bits, p.b, m: m, k: k, o: o, threads: 2) else {
            #expect(!DNNL.hasBF16DotProducts, "oneDNN refused a bf16 matmul on a CPU with bf16 dot products")
            return
        }
        // Products of bf16 values are exact in float32: only the float32 accumulation differs from fp64.
        let rounded = widenBF16(p.x.map { naiveBF16($0) })
        expectClose(y, Naive.linear(rounded, widenBF16(p.bits), p.b, m: m, k: k, o: o), rtol: 1e-5)
        // Against the unrounded activations: bf16's 8-bit mantissa, errors averaging out over K.
        expectClose(y, Naive.linear(p.x, widenBF16(p.bits), p.b, m: m, k: k, o: o), rtol: 1e-2)
        let noBias = try #require(run(p.x, p.bits, nil, m: m, k: k, o: o, threads: 2))
        expectClose(noBias, Naive.linear(rounded, widenBF16(p.bits), nil, m: m, k: k, o: o), rtol: 1e-5)
    }

    /// A batch item's rows come out bit for bit as when it runs alone, at every batch size, and at 1 and 2
    /// threads alike.
    @Test func independentOfBatchAndThreads() throws {
        let tokens = 77, k = 256, o = 320
        let p = problem(m: 4 * tokens, k: k, o: o, seed: 5)
        guard let all = run(p.x, p.bits, p.b, m: 4 * tokens, k: k, o: o, threads: 2, groupRows: tokens) else {
            #expect(!DNNL.hasBF16DotProducts)
            return
        }
        for item in 0..<4 {
            let xi = Array(p.x[(item * tokens * k)..<((item + 1) * tokens * k)])
            let solo = try #require(run(xi, p.bits, p.b, m: tokens, k: k, o: o, threads: 1))
            #expect(solo == Array(all[(item * tokens * o)..<((item + 1) * tokens * o)]), "item \(item)")
        }
        for batch in 1...3 {
            let xb = Array(p.x[0..<(batch * tokens * k)])
            let yb = try #require(run(xb, p.bits, p.b, m: batch * tokens, k: k, o: o, threads: 2, groupRows: tokens))
            #expect(yb == Array(all[0..<(batch * tokens * o)]), "batch \(batch)")
        }
        // a long item (more rows than one activation chunk) at 1 and 2 threads
        let long = problem(m: 600, k: 2304, o: 96, seed: 9)
        let one = try #require(run(long.x, long.bits, long.b, m: 600, k: 2304, o: 96, threads: 1))
        let two = try #require(run(long.x, long.bits, long.b, m: 600, k: 2304, o: 96, threads: 2))
        #expect(one == two)
    }

    /// `linear(half:)` (or, with `widened`, `linearWidened`) on the problem's bf16 weight.
    private func halfLinear(_ p: (x: [Float], bits: [UInt16], b: [Float]), m: Int, k: Int, o: Int, widened: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: m * o)
        var scratch = [Float](repeating: 0, count: halfLinearScratchCount(inFeatures: k))
        p.bits.withUnsafeBufferPointer { wp in
            let w = HalfMatrix(format: .bf16, shape: [o, k], pointer: wp.baseAddress!, owner: p.bits as NSArray)
            if widened {
                linearWidened(&y, p.x, half: w, p.b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch, threads: 2)
            } else {
                linear(&y, p.x, half: w, p.b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch, threads: 2)
            }
        }
        return y
    }

    /// The widening path (CPUs without bf16 dot products, or `DARKROOM_BF16_DOT_PRODUCTS=off`) on a bf16 weight:
    /// float32 products of the exact widened weight.
    @Test func widenedPathMatchesNaive() {
        let m = 5, k = 37, o = 300  // o spans three widening blocks
        let p = problem(m: m, k: k, o: o, seed: 4)
        let y = halfLinear(p, m: m, k: k, o: o, widened: true)
        expectClose(y, Naive.linear(p.x, widenBF16(p.bits), p.b, m: m, k: k, o: o), rtol: 1e-5)
    }

    /// `linear(half:)` takes the dot-product path exactly where the CPU has bf16 dot products.
    @Test func dispatchFollowsTheCPU() {
        let m = 9, k = 64, o = 33
        let p = problem(m: m, k: k, o: o, seed: 2)
        let y = halfLinear(p, m: m, k: k, o: o, widened: false)
        let dot = DNNL.hasBF16DotProducts && bf16DotProductsEnabled
        let x = dot ? widenBF16(p.x.map { naiveBF16($0) }) : p.x
        expectClose(y, Naive.linear(x, widenBF16(p.bits), p.b, m: m, k: k, o: o), rtol: 1e-5)
    }
}
