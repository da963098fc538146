// int8 weights with one float32 scale per output channel (symmetric: w[o][k] ≈ q[o][k] · scale[o], q in
// -127…127), kept int8 in memory (a quarter of float32). A linear layer over them runs either through the CPU's
// int8 dot products (Int8DotProducts.swift: activations quantized per token at run time, int32 accumulation) or,
// where the CPU has none, by dequantizing a block of output rows at a time to float32 for sgemm (the weight's
// values exactly, activations untouched). The layout on disk is docs/engine.md §1.3.
import Glibc

/// A `[rows, columns]` (or `[rows, columns, 1, 1]`) int8 matrix with a float32 scale per row, as stored in a
/// weight file (usually a read-only mapping). `owner` keeps that memory alive as long as the view is.
public struct Int8Matrix: @unchecked Sendable {
    public let shape: [Int]
    /// `[rows, columns]` row-major.
    public let pointer: UnsafePointer<Int8>
    /// `[rows]`
    public let scales: UnsafePointer<Float>
    public let owner: AnyObject

    public init(shape: [Int], pointer: UnsafePointer<Int8>, scales: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.pointer = pointer
        self.scales = scales
        self.owner = owner
    }

    public var count: Int { shape.reduce(1, *) }
    public var rows: Int { shape.first ?? 0 }
    public var columns: Int { rows == 0 ? 0 : count / rows }
}

/// Symmetric per-row quantization: `scale[r] = max|x[r]| / 127`, `q[r][c] = round(x[r][c] / scale[r])` (ties to
/// even, so within -127…127); an all-zero row gets scale 0 and zeros, a row holding NaN or ±∞ scale NaN (its results are NaN). Used for weights (offline, `models quantize`)
/// and for activations (per token, at run time), so both sides round the same way.
// x: [R, C] -> q: [R, C], scale: [R]
public func quantizeRows(_ q: UnsafeMutablePointer<Int8>, _ scale: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                         rows: Int, columns c: Int) {
    for r in 0..<rows {
        let xr = x + r * c, qr = q + r * c
        var amax: Float = 0, poison: Float = 0   // poison: NaN when the row holds a NaN or an infinity
        for i in 0..<c {
            amax = max(amax, abs(xr[i]))
            poison += xr[i] * 0
        }
        guard amax > 0, poison == 0 else {   // zero row: scale 0; non-finite row: scale NaN (its outputs NaN)
            scale[r] = poison == 0 ? 0 : .nan
            qr.update(repeating: 0, count: c)
            continue
        }
        let s = amax / 127
        scale[r] = s
        for i in 0..<c { qr[i] = Int8((xr[i] / s).rounded(.toNearestOrEven)) }
    }
}

/// Rows of an int8 matrix as float32 (`q · scale`, exact in float32: |q| ≤ 127 has 7 bits).
// q: [R, C], scale: [R] -> y: [R, C]
@inline(__always)
public func dequantizeRows(_ y: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Int8>, _ scale: UnsafePointer<Float>,
                           rows: Int, columns c: Int) {
    for r in 0..<rows {
        let s = scale[r], qr = q + r * c, yr = y + r * c
        for i in 0..<c { yr[i] = Float(qr[i]) * s }
    }
}

/// Linear layer over an int8 weight: `int8DotProducts` on a CPU with int8 dot products (VNNI) unless the
/// environment says `DARKROOM_INT8_DOT_PRODUCTS=off`, else the weight dequantized per block for sgemm.
// x: [M, K], w: [O, K] (int8 + scales), b: [O]?, scratch: [halfLinearScratchCount(K)] -> y: [M, O]
public func linear(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, int8 w: Int8Matrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int? = nil
) {
    if int8DotProductsEnabled && DNNL.hasInt8DotProducts
        && linearInt8DotProducts(y, x, int8: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch,
                                 threads: threads) {
        return
    }
    linearDequantized(y, x, int8: w, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads,
                      groupRows: groupRows)
}

/// False when the environment says `DARKROOM_INT8_DOT_PRODUCTS=off` (read once).
public let int8DotProductsEnabled: Bool = environmentSwitch("DARKROOM_INT8_DOT_PRODUCTS")

/// The path `linear(int8:)` takes on this machine (for benchmark notes and `models inspect`).
public var int8LinearPath: String {
    int8DotProductsEnabled && DNNL.hasInt8DotProducts
        ? "int8 dot products (oneDNN VNNI matmul, activations quantized per token)"
        : "dequantized per block to float32 (sgemm)"
}

/// Linear layer over an int8 weight dequantized `halfLinearBlockRows` output rows at a time into `scratch`,
/// each block one sgemm per `groupRows` rows (as `linearWidened`, so a batch item's numbers never depend on
/// its batch-mates).
// x: [M, K], w: [O, K] (int8 + scales), b: [O]?, scratch: [halfLinearBlockRows, K] -> y: [M, O]
public func linearDequantized(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, int8 w: Int8Matrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int? = nil
) {
    precondition(w.count == o * k, "linear: int8 weight \(w.shape) is not [\(o), \(k)]")
    linearOverFloatBlocks(y, x, b, rows: m, inFeatures: k, outFeatures: o, scratch: scratch, threads: threads,
                          groupRows: groupRows) { block, row0, rows in
        dequantizeRows(block, w.pointer + row0 * k, w.scales + row0, rows: rows, columns: k)
    }
}
