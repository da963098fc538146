// A linear layer over a bf16 weight computed with the CPU's bf16 dot products (AVX512_BF16 `vdpbf16ps`, or AMX)
// through oneDNN's matmul: the activations are rounded to bf16 per call, products accumulate in float32 and the
// output is float32. The weight stays as stored (bf16 `[O, K]`, usually the file's mapping): oneDNN reads it as
// the `[K, O]` matrix Wᵀ in `ba` order, nothing is converted or copied at load.
import CDNNL

/// Rounds float32 to bf16 (round to nearest, ties to even; NaN stays NaN), as torch's `.to(torch.bfloat16)`.
// x: [count] -> y: [count] (bf16 bits)
public func roundToBF16(_ y: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let u = x[i].bitPattern
        let nan = (u & 0x7fff_ffff) > 0x7f80_0000
        let rounded = UInt16(truncatingIfNeeded: (u &+ 0x7fff &+ ((u >> 16) & 1)) >> 16)
        y[i] = nan ? (UInt16(truncatingIfNeeded: u >> 16) | 0x40) : rounded
    }
}

private struct BF16MatmulKey: Hashable, Sendable {
    let m: Int, k: Int, n: Int, bias: Bool
}

private let bf16Matmuls = DNNLCache<BF16MatmulKey, DNNLPrimitive>()

/// The oneDNN bf16 matmul for `[m, k]·[k, n]` (+ bias), created once per shape; nil where oneDNN has none.
private func bf16Matmul(m: Int, k: Int, n: Int, bias: Bool) -> DNNLPrimitive? {
    bf16Matmuls.entry(BF16MatmulKey(m: m, k: k, n: n, bias: bias)) {
        dnnlLinearMatmul(m: m, k: k, n: n, type: dnnl_bf16, bias: bias)
    }
}

/// Rows of activations rounded to bf16 per oneDNN call: they live in the caller's `halfLinearScratchCount`
/// floats (128·K floats hold 256·K bf16 values).
public let bf16LinearChunkRows = 2 * halfLinearBlockRows

/// Whether `linear(half:)` takes the bf16 dot-product path for this weight on this CPU.
public func bf16DotProductsServe(_ w: HalfMatrix) -> Bool { w.format == .bf16 && DNNL.hasBF16DotProducts }

/// Linear layer over a bf16 weight with bf16 dot products: `y = round_bf16(x)·Wᵀ + b`, float32 accumulation.
/// Rows go to oneDNN `groupRows` at a time (a batch item's tokens) and at most `bf16LinearChunkRows` per call, so a
/// row's result depends only on its own item, never on its batch-mates. Returns false (and writes nothing
/// useful) when oneDNN cannot serve the shape; the caller then takes the widening path.
// x: [M, K], w: [O, K] (bf16), b: [O]?, scratch: [halfLinearScratchCount(K)] -> y: [M, O]
public func linearBF16DotProducts(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, bf16 w: HalfMatrix, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, scratch: UnsafeMutablePointer<Float>, threads: Int,
    groupRows: Int? = nil
) -> Bool {
    guard m > 0, o > 0 else { return true }
    precondition(w.format == .bf16 && w.count == o * k, "linearBF16DotProducts: weight \(w.shape) is not bf16 [\(o), \(k)]")
    let xb = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt16.self, capacity: 2 * halfLinearScratchCount(inFeatures: k))
    let weight = UnsafeMutableRawPointer(mutating: w.pointer)
    let bias = b.map { UnsafeMutableRawPointer(mutating: $0) }
    let group = max(1, groupRows ?? m)
    var g0 = 0
    while g0 < m {
        let groupEnd = min(m, g0 + group)
        var r0 = g0
        while r0 < groupEnd {
            let rows = min(bf16LinearChunkRows, groupEnd - r0)
            guard let mm = bf16Matmul(m: rows, k: k, n: o, bias: b != nil) else { return false }
            roundToBF16(xb, x + r0 * k, count: rows * k)
            var pointers: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(xb), weight, UnsafeMutableRawPointer(y + r0 * o)]
            if let bias { pointers.append(bias) }
            guard mm.run(pointers, threads: threads) else { return false }
            r0 += rows
        }
        g0 = groupEnd
    }
    return true
}
