// The 16-wide Box–Muller transform of torch.randn for n >= 16. See docs/engine.md §5.3.
// Ports:
//   aten/src/ATen/native/cpu/DistributionKernels.cpp  normal_fill_16_AVX2 (u1 = 1 - d[j], u2 = d[j+8],
//       radius = sqrt(-2 * log256_ps(u1)), theta = 2π·u2, sincos256_ps, fmadd(n, std, mean))
//   aten/src/ATen/native/cpu/avx_mathfun.h            log256_ps, sincos256_ps (Cephes polynomials), as compiled by
//       GCC with -mfma and default contraction: the fused operations below are exactly where GCC fuses.
//   aten/src/ATen/native/cpu/DistributionTemplates.h  normal_fill_16 (generic libm variant)
import Foundation

enum BoxMuller16 {
    // Constants are double literals rounded once to float, as `_PS256_CONST(name, double)` does.
    static let sqrtHalf = Float(0.707106781186547524 as Double)
    static let logP: [Float] = [
        7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
        -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
    ].map { (d: Double) in Float(d) }
    static let logQ1 = Float(-2.12194440e-4 as Double)
    static let logQ2 = Float(0.693359375 as Double)
    static let fourOverPi = Float(1.27323954473516 as Double)
    static let dp1 = Float(-0.78515625 as Double)
    static let dp2 = Float(-2.4187564849853515625e-4 as Double)
    static let dp3 = Float(-3.77489497744594108e-8 as Double)
    static let cos0 = Float(2.443315711809948e-5 as Double)
    static let cos1 = Float(-1.388731625493765e-3 as Double)
    static let cos2 = Float(4.166664568298827e-2 as Double)
    static let sin0 = Float(-1.9515295891e-4 as Double)
    static let sin1 = Float(8.3321608736e-3 as Double)
    static let sin2 = Float(-1.6666654611e-1 as Double)
    static let twoPi = Float(2.0 * Double.pi)                     // 0x40C90FDB
    static let minNormPos = Float(bitPattern: 0x0080_0000)

    /// a·b + c with one rounding (the FMA GCC emits under -mfma).
    @inline(__always)
    static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float { c.addingProduct(a, b) }

    static func apply(_ b: UnsafeMutablePointer<Float>, kernel: NormalKernel) {
        switch kernel {
        case .avx2:
            for j in 0..<8 {
                let u1: Float = 1 - b[j]
                let u2 = b[j + 8]
                let r = (-2 * log256(u1)).squareRoot()
                let (s, c) = sincos256(twoPi * u2)
                b[j] = r * c
                b[j + 8] = r * s
            }
        case .generic:
            for j in 0..<8 {
                let u1: Float = 1 - b[j]
                let u2 = b[j + 8]
                let r = (-2 * logf(u1)).squareRoot()
                let theta = Float(2.0 * Double.pi * Double(u2))
                b[j] = r * cosf(theta)
                b[j + 8] = r * sinf(theta)
            }
        }
    }

    /// log256_ps for one lane, u ∈ (0, 1].
    @inline(__always)
    static func log256(_ u: Float) -> Float {
        let x0 = max(u, minNormPos)
        let bits = x0.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 127) + 1
        let m = Float(bitPattern: (bits & ~UInt32(0x7f80_0000)) | 0x3f00_0000)
        let mask = m < sqrtHalf
        var x = (m - 1) + (mask ? m : 0)
        if mask { e = e - 1 }
        let z = x * x
        var y = logP[0]
        for k in 1..<logP.count { y = fma(y, x, logP[k]) }
        y = y * x
        y = fma(y, z, e * logQ1)
        y = y - z * 0.5
        x = x + y
        x = x + e * logQ2
        return x
    }

    /// sincos256_ps for one lane, θ ≥ 0. Returns (sin, cos).
    @inline(__always)
    static func sincos256(_ theta: Float) -> (Float, Float) {
        let jj = (Int32(theta * fourOverPi) &+ 1) & ~1
        let yq = Float(jj)
        let swapSin = (jj & 4) != 0
        let polySin = (jj & 2) == 0
        let negCos = ((~(jj &- 2)) & 4) != 0
        var x = fma(yq, dp1, theta)
        x = fma(yq, dp2, x)
        x = fma(yq, dp3, x)
        let z = x * x
        var pc = fma(fma(cos0, z, cos1), z, cos2)
        pc = pc * z
        pc = fma(pc, z, -(z * 0.5))
        pc = pc + 1
        var ps = fma(fma(sin0, z, sin1), z, sin2)
        ps = ps * z
        ps = fma(ps, x, x)
        var s = polySin ? ps : pc
        var c = polySin ? pc : ps
        if swapSin { s = -s }
        if negCos { c = -c }
        return (s, c)
    }
}
