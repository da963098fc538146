import Foundation
import Testing
import Tensor

/// The 16-bit linear layer against the naive loop over the widened weight.
@Suite struct HalfLinearTests {
    // x: [M, K], w: [O, K] -> y: [M, O], naive, in Double
    func naive(_ x: [Float], _ w: [Float], _ b: [Float], m: Int, k: Int, o: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m * o)
        for r in 0..<m {
            for j in 0..<o {
                var s = Double(b[j])
                for i in 0..<k { s += Double(x[r * k + i]) * Double(w[j * k + i]) }
                y[r * o + j] = Float(s)
            }
        }
        return y
    }

    @Test(arguments: [HalfMatrix.Format.bf16, .f16])
    func matchesNaive(format: HalfMatrix.Format) {
        let m = 5, k = 37, o = 300  // o spans three widening blocks
        var g = SystemRandomNumberGenerator()
        let x = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &g) }
        let b = (0..<o).map { _ in Float.random(in: -1...1, using: &g) }
        // 16-bit bits of random values, and their exact widening
        let bits: [UInt16] = (0..<(o * k)).map { _ in
            let v = Float.random(in: -1...1, using: &g)
            return format == .bf16 ? UInt16(v.bitPattern >> 16) : Float16(v).bitPattern
        }
        let wide: [Float] = bits.map { format == .bf16 ? Float(bitPattern: UInt32($0) << 16) : Float(Float16(bitPattern: $0)) }
        let owner = bits as NSArray
        // Where the CPU has bf16 dot products a bf16 weight multiplies bf16-rounded activations (Tensor
        // `linearBF16DotProducts`); the products are then exact in float32 as well.
        let dot = format == .bf16 && bf16DotProductsEnabled
            && bits.withUnsafeBufferPointer { bf16DotProductsServe(HalfMatrix(format: format, shape: [o, k], pointer: $0.baseAddress!, owner: owner)) }
        var rounded = [UInt16](repeating: 0, count: m * k)
        roundToBF16(&rounded, x, count: m * k)
        let want = naive(dot ? rounded.map { Float(bitPattern: UInt32($0) << 16) } : x, wide, b, m: m, k: k, o: o)
        var y = [Float](repeating: .nan, count: m * o)
        var scratch = [Float](repeating: 0, count: halfLinearScratchCount(inFeatures: k))
        bits.withUnsafeBufferPointer { wp in
            let w = HalfMatrix(format: format, shape: [o, k], pointer: wp.baseAddress!, owner: owner)
            linear(&y, x, half: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: &scratch, threads: 2)
        }
        for i in 0..<(m * o) { #expect(abs(y[i] - want[i]) <= 1e-5 * max(1, abs(want[i])), "index \(i)") }
    }
}
