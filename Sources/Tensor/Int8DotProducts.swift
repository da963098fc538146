// A linear layer over an int8 weight computed with the CPU's int8 dot products (AVX-512 VNNI `vpdpbusd`, or
// AVX-VNNI) through oneDNN's int8 matmul: each activation row (a token) is quantized symmetrically to int8 with
// its own scale at run time (`quantizeRows`), oneDNN multiplies s8 × s8 into exact int32 sums, and the sums are
// scaled back in place: `y[m][n] = Float(acc) · sx[m] · sw[n] + b[n]`. Integer sums are exact, so a row's result
// depends on nothing but that row and the weight: not on the batch, the chunking or the thread count.
// The weight stays as stored (int8 `[O, K]`, usually the file's mapping), read by oneDNN as Wᵀ in `ba` order.
import CDNNL

extension DNNL {
    /// Whether oneDNN runs int8 dot-product kernels here (avx512_core_vnni and up, or avx2_vnni), from its
    /// dispatcher, which asks cpuid. Without them `linear(int8:)` dequantizes (AVX2's `vpmaddubsw` saturates
    /// 16-bit pair sums, so its results would not be exact).
    public static let hasInt8DotProducts: Bool = {
        guard engine != nil else { return false }
        let v = dnnl_get_effective_cpu_isa().rawValue
        let vnni = dnnl_cpu_isa_avx512_core_vnni.rawValue, avx2vnni = dnnl_cpu_isa_avx2_vnni.rawValue
        return v & vnni == vnni || v & avx2vnni == avx2vnni
    }()
}

private struct Int8MatmulKey: Hashable, Sendable {
    let m: Int, k: Int, n: Int
}

private let int8Matmuls = DNNLCache<Int8MatmulKey, DNNLPrimitive>()

/// The oneDNN s8 × s8 → s32 matmul for `[m, k]·[k, n]`, created once per shape; nil where oneDNN has none.
private func int8Matmul(m: Int, k: Int, n: Int) -> DNNLPrimitive? {
    int8Matmuls.entry(Int8MatmulKey(m: m, k: k, n: n)) {
        guard var src = dnnlDesc([m, k], dnnl_s8, dnnl_ab),
              var wei = dnnlDesc([k, n], dnnl_s8, dnnl_ba),  // W [n, k] row-major read as Wᵀ
              var dst = dnnlDesc([m, n], dnnl_s32, dnnl_ab) else { return nil }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst) == dnnl_success else { return nil }
        let args: [(Int32, dnnl_memory_desc_t)] = [(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, wei), (DNNL_ARG_DST, dst)]
        return withUnsafePointer(to: &desc) { DNNLPrimitive(descriptor: UnsafeRawPointer($0), arguments: args) }
    }
}

/// oneDNN's implementation name for the int8 matmul of this shape (e.g. `brg:avx512_core_vnni`), nil if none.
public func int8MatmulImplementation(rows m: Int, inFeatures k: Int, outFeatures n: Int) -> String? {
    int8Matmul(m: m, k: k, n: n)?.implementation
}

/// Rows quantized per oneDNN call: their int8 values and scales live in the caller's `halfLinearScratchCount`
/// floats (512·K bytes hold 256 rows of K bytes plus 256 scales for any K ≥ 4).
public let int8LinearChunkRows = 2 * halfLinearBlockRows

/// Linear layer over an int8 weight with int8 dot products: `y = (q(x) · Wqᵀ) · sx · sw + b`, exact int32 sums
/// (see the file comment). The int32 sums are written into `y` itself and scaled there. Returns false (and
/// writes nothing useful) when oneDNN cannot serve the shape; the caller then dequantizes.
// x: [M, K], w: [O, K] (int8 + scales), b: [O]?, scratch: [halfLinearScratchCount(K)] -> y: [M, O]
public func linearInt8DotProducts(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, int8 w: Int8Matrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int
) -> Bool {
    guard m > 0, o > 0 else { return true }
    precondition(w.count == o * k, "linearInt8DotProducts: weight \(w.shape) is not [\(o), \(k)]")
    guard k >= 4 else { return false }
    let chunk = int8LinearChunkRows
    let raw = UnsafeMutableRawPointer(scratch)
    let sx = raw.bindMemory(to: Float.self, capacity: chunk)
    let qx = (raw + 4 * chunk).bindMemory(to: Int8.self, capacity: chunk * k)
    let weight = UnsafeMutableRawPointer(mutating: w.pointer)
    var r0 = 0
    while r0 < m {
        let rows = min(chunk, m - r0)
        guard let mm = int8Matmul(m: rows, k: k, n: o) else { return false }
        let xr = x + r0 * k
        if threads > 1 && rows >= 2 * threads {
            parallelFor(rows, grain: max(1, rows / threads)) { range in
                quantizeRows(qx + range.lowerBound * k, sx + range.lowerBound, xr + range.lowerBound * k,
                             rows: range.count, columns: k)
            }
        } else {
            quantizeRows(qx, sx, xr, rows: rows, columns: k)
        }
        let out = UnsafeMutableRawPointer(y + r0 * o)
        // Small products on one thread: waking OpenMP's team costs more than it saves (results are exact either way).
        let team = rows * k * o >= 1 << 21 ? threads : 1
        guard mm.run([UnsafeMutableRawPointer(qx), weight, out], threads: team) else { return false }
        if threads > 1 && rows * o >= 1 << 15 {
            parallelFor(rows, grain: max(1, rows / threads)) { range in
                scaleInt32Sums(out + 4 * range.lowerBound * o, rowScales: sx + range.lowerBound, w.scales, b,
                               rows: range.count, columns: o)
            }
        } else {
            scaleInt32Sums(out, rowScales: sx, w.scales, b, rows: rows, columns: o)
        }
        r0 += rows
    }
    return true
}

/// Int32 sums turned into float32 in place: `y[r][c] = Float(acc[r][c]) · sx[r] · sw[c] + b[c]`.
// acc: [R, C] (int32, the same bytes as y), sx: [R], sw: [C], b: [C]? -> y: [R, C]
@inline(__always)
func scaleInt32Sums(_ y: UnsafeMutableRawPointer, rowScales sx: UnsafePointer<Float>, _ sw: UnsafePointer<Float>,
                    _ b: UnsafePointer<Float>?, rows: Int, columns c: Int) {
    for r in 0..<rows {
        let s = sx[r]
        let row = y + 4 * r * c
        if let b {
            for i in 0..<c {
                let acc = row.load(fromByteOffset: 4 * i, as: Int32.self)
                row.storeBytes(of: int8Output(acc, s, sw[i], b[i]), toByteOffset: 4 * i, as: Float.self)
            }
        } else {
            for i in 0..<c {
                let acc = row.load(fromByteOffset: 4 * i, as: Int32.self)
                row.storeBytes(of: int8Output(acc, s, sw[i], 0), toByteOffset: 4 * i, as: Float.self)
            }
        }
    }
}

/// One output of the int8 path from its exact int32 sum (the naive reference in the tests uses this too).
@inline(__always)
public func int8Output(_ acc: Int32, _ rowScale: Float, _ weightScale: Float, _ bias: Float) -> Float {
    Float(acc) * rowScale * weightScale + bias
}
