// Vectorised exp for the activation and softmax kernels. Cephes `expf` (cephes/single/expf.c):
// range reduction x = n·ln2 + r with ln2 split in two (0.693359375, -2.12194440e-4), a degree-6
// polynomial for e^r on |r| ≤ ln2/2, and 2^n built in the exponent bits. Relative error ≈ 2e-7
// on [-87.33, 88]; +inf above 88 (true e^x ≤ 1.65e38 there) and 0 below -87.33 (past the normal range).
// Out-of-range lanes compute garbage that the two masks replace, so no clamp (a library call) is needed.

public typealias FloatVector = SIMD8<Float>

@inlinable @inline(__always)
public func vexp(_ x: FloatVector) -> FloatVector {
    let xc = x
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no SSE4.1 rounding needed).
    let magic = FloatVector(repeating: 12_582_912)
    let t = xc * 1.442_695_040_888_963_4 + magic
    let n = t - magic
    var r = xc - n * 0.693_359_375
    r = r - n * -2.121_944_40e-4
    var p = FloatVector(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let e = p * (r * r) + r + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let pow2 = unsafeBitCast((ni &+ 127) &<< 23, to: FloatVector.self)
    var result = e * pow2
    result.replace(with: .infinity, where: x .> 88)
    result.replace(with: 0, where: x .< -87.33)
    return result
}

/// Applies `f` to `count` floats 8 at a time (the tail padded with zeros); `y` may alias `x`.
@inlinable @inline(__always)
func mapVectors(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ range: Range<Int>,
    _ f: (FloatVector) -> FloatVector
) {
    var i = range.lowerBound
    let end = range.upperBound
    while i + 8 <= end {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatVector.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: f(v), as: FloatVector.self)
        i += 8
    }
    if i < end {
        var v = FloatVector(repeating: 0)
        for j in 0..<(end - i) { v[j] = x[i + j] }
        let r = f(v)
        for j in 0..<(end - i) { y[i + j] = r[j] }
    }
}
