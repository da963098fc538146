// 16-bit weights (bfloat16 or IEEE half) kept 16-bit in memory and widened to float32 a block of output
// rows at a time for the matmul, so a bf16 checkpoint costs its file size in RSS, not twice that.
import Glibc

/// A `[rows, columns]` matrix of 16-bit floats as stored in a weight file (usually a read-only mapping).
/// `owner` keeps that memory alive as long as the view is.
public struct HalfMatrix: @unchecked Sendable {
    public enum Format: String, Sendable { case bf16 = "BF16", f16 = "F16" }

    public let format: Format
    public let shape: [Int]
    public let pointer: UnsafePointer<UInt16>
    public let owner: AnyObject

    public init(format: Format, shape: [Int], pointer: UnsafePointer<UInt16>, owner: AnyObject) {
        self.format = format
        self.shape = shape
        self.pointer = pointer
        self.owner = owner
    }

    public var count: Int { shape.reduce(1, *) }
}

/// A weight matrix as a layer reads it: float32 (mapped or owned), 16-bit (widened per block) or int8 with
/// per-row scales (Int8Linear.swift).
public enum WeightMatrix: @unchecked Sendable {
    case float(WeightView)
    case half(HalfMatrix)
    case int8(Int8Matrix)

    public var shape: [Int] {
        switch self {
        case .float(let v): return v.shape
        case .half(let h): return h.shape
        case .int8(let q): return q.shape
        }
    }

    /// Bytes this matrix occupies as stored.
    public var storedBytes: Int {
        switch self {
        case .float(let v): return 4 * v.count
        case .half(let h): return 2 * h.count
        case .int8(let q): return q.count + 4 * q.rows
        }
    }
}

/// Widens 16-bit floats to float32 (exact for both formats).
// x: [count] (bf16 or f16 bits) -> y: [count]
@inline(__always)
public func widen(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt16>, count: Int, format: HalfMatrix.Format) {
    switch format {
    case .bf16:
        for i in 0..<count { y[i] = Float(bitPattern: UInt32(UInt16(littleEndian: x[i])) << 16) }
    case .f16:
        for i in 0..<count { y[i] = halfBitsToFloat(UInt16(littleEndian: x[i])) }
    }
}

/// IEEE binary16 → binary32 (exact, subnormals included).
@inline(__always)
public func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1f
    let mant = UInt32(h & 0x3ff)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * Float(bitPattern: 0x3380_0000)  // mant · 2^-24
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
}

/// Row `row` of a `[rows, columns]` matrix as float32 (an embedding lookup: 16-bit rows widened one at a time).
// w: [R, C] -> y: [C]
public func copyRow(_ y: UnsafeMutablePointer<Float>, _ w: WeightMatrix, row: Int, columns c: Int) {
    switch w {
    case .float(let v): y.update(from: v.pointer + row * c, count: c)
    case .half(let h): widen(y, h.pointer + row * c, count: c, format: h.format)
    case .int8(let q): dequantizeRows(y, q.pointer + row * c, q.scales + row, rows: 1, columns: c)
    }
}

/// Output rows of a 16-bit weight widened per sgemm: 128 rows × K floats of scratch.
public let halfLinearBlockRows = 128

/// Scratch floats `linear(_:_:half:…)` needs for `inFeatures` K.
public func halfLinearScratchCount(inFeatures k: Int) -> Int { halfLinearBlockRows * k }

/// Linear layer over a 16-bit weight (torch `Linear` on the stored weight): a bf16 weight on a CPU with bf16 dot
/// products goes through `linearBF16DotProducts` (activations rounded to bf16, float32 accumulation, as torch's
/// bf16 `Linear` on CPU computes); anything else through `linearWidened` (the weight upcast to float32).
/// `DARKROOM_BF16_DOT_PRODUCTS=off` in the environment forces the widening path (for side-by-side benchmarks).
// x: [M, K], w: [O, K] (16-bit), b: [O]?, scratch: [halfLinearBlockRows, K] -> y: [M, O]
public func linear(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, half w: HalfMatrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int? = nil
) {
    if bf16DotProductsEnabled && bf16DotProductsServe(w)
        && linearBF16DotProducts(y, x, bf16: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch,
                                 threads: threads, groupRows: groupRows) {
        return
    }
    linearWidened(y, x, half: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads,
                  groupRows: groupRows)
}

/// False when the environment says `DARKROOM_BF16_DOT_PRODUCTS=off` (read once).
public let bf16DotProductsEnabled: Bool = environmentSwitch("DARKROOM_BF16_DOT_PRODUCTS")

/// Linear layer over a 16-bit weight with the weight upcast (`y = x·Wᵀ + b` in float32): the weight's
/// output rows are widened `halfLinearBlockRows` at a time into `scratch` (the widening spread over `threads`)
/// and each block is one sgemm into its columns of `y` — or one per `groupRows` rows (a batch item's tokens), so
/// that an item's numbers do not depend on how many rows OpenBLAS was handed.
// x: [M, K], w: [O, K] (16-bit), b: [O]?, scratch: [halfLinearBlockRows, K] -> y: [M, O]
public func linearWidened(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, half w: HalfMatrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int? = nil
) {
    precondition(w.count == o * k, "linear: weight \(w.shape) is not [\(o), \(k)]")
    linearOverFloatBlocks(y, x, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads,
                          groupRows: groupRows) { block, row0, rows in
        widen(block, w.pointer + row0 * k, count: rows * k, format: w.format)
    }
}

/// `y = x·Wᵀ + b` with W made float32 `halfLinearBlockRows` output rows at a time by `fill(block, firstRow,
/// rows)` (a 16-bit weight widened, an int8 weight dequantized; the filling spread over `threads`), each block one
/// sgemm into its columns of `y` — or one per `groupRows` rows (a batch item's tokens), so that an item's numbers
/// do not depend on how many rows OpenBLAS was handed.
// x: [M, K], b: [O]?, scratch: [halfLinearBlockRows, K] -> y: [M, O]
func linearOverFloatBlocks(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int?, fill: (UnsafeMutablePointer<Float>, Int, Int) -> Void
) {
    guard m > 0, o > 0 else { return }
    var beta: Float = 0
    if let b {
        for r in 0..<m { (y + r * o).update(from: b, count: o) }
        beta = 1
    }
    var o0 = 0
    while o0 < o {
        let rows = min(halfLinearBlockRows, o - o0)
        if threads > 1 && rows * k >= 1 << 15 {
            parallelFor(rows, grain: max(1, rows / threads)) { range in
                fill(scratch + range.lowerBound * k, o0 + range.lowerBound, range.count)
            }
        } else {
            fill(scratch, o0, rows)
        }
        let group = max(1, groupRows ?? m)
        var r0 = 0
        while r0 < m {
            sgemm(transA: false, transB: true, m: min(group, m - r0), n: rows, k: k, alpha: 1, x + r0 * k, lda: k,
                  scratch, ldb: k, beta: beta, y + r0 * o + o0, ldc: o)
            r0 += group
        }
        o0 += rows
    }
}
