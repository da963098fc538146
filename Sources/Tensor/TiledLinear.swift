// A float32 linear layer cut into tiles that each run on one thread: (batch item, block of output columns). Every
// tile is a single-threaded matrix product of a shape that depends only on the item's row count and the layer, so
// an item's numbers never depend on its batch-mates or on the thread count, and a batch of two runs as two
// independent streams instead of splitting each item's product over both cores (OpenBLAS's second thread helps
// little at the 256-row products of a 512² Sana image). The products go through oneDNN's float32 matmul
// (`brg:avx512_core` on AVX-512: it reads the activations in place and repacks only the weight block; it writes a
// dense block, copied into the output rows, because oneDNN 2.6 takes a row-strided output to its slower gemm:jit)
// for the first multiple of 64 rows of an item, and through single-threaded OpenBLAS sgemm for the rest and wherever
// oneDNN has no optimised kernel. `DARKROOM_DNNL_MATMUL=off` keeps every tile on OpenBLAS; `DARKROOM_LINEAR_TILES=off`
// restores one sgemm per item over all cores (`linear`, Linear.swift).
import CDNNL
import COpenBLAS
import Core

/// False when the environment says `DARKROOM_LINEAR_TILES=off` (read once): float32 linear layers then run one
/// multi-threaded sgemm per batch item (`linear`).
public let linearTilesEnabled: Bool = environmentSwitch("DARKROOM_LINEAR_TILES")

/// False when the environment says `DARKROOM_DNNL_MATMUL=off` (read once): every tile of `linearTiles` runs on
/// single-threaded OpenBLAS sgemm.
public let dnnlMatmulEnabled: Bool = environmentSwitch("DARKROOM_DNNL_MATMUL")

/// Rows of an item that oneDNN multiplies in one call: the largest multiple of this (the remainder goes to sgemm),
/// so a layer sees at most `rows / 64 + 1` oneDNN shapes however the caption lengths vary.
public let linearTileRowQuantum = 64

/// Output-column blocks of a layer with `o` outputs: 1 below 256 columns, 2 up to 2,047, 4 from 2,048 — a function of
/// the layer alone (never of the batch or the thread count), so batch 1 still keeps two cores busy. Block
/// boundaries fall on multiples of 16.
// -> [blocks + 1] column boundaries, 0 ... o
public func linearTileColumns(outFeatures o: Int) -> [Int] {
    let blocks = o < 256 ? 1 : o < 2048 ? 2 : 4
    return (0...blocks).map { p in p == blocks ? o : (o * p / blocks) / 16 * 16 }
}

private struct FloatMatmulKey: Hashable, Sendable {
    let m: Int, k: Int, n: Int, bias: Bool
}

private let floatMatmuls = DNNLCache<FloatMatmulKey, DNNLPrimitive>()

/// The oneDNN float32 matmul `[m, k]·[k, n]` (+ bias) into a dense `[m, n]` block, made once per shape for one thread
/// (oneDNN fixes a primitive's thread count when it is created, so it is created with the calling thread's OpenMP
/// count set to 1 and always run on the calling thread). nil where oneDNN has only its reference kernel.
private func floatMatmul(m: Int, k: Int, n: Int, bias: Bool) -> DNNLPrimitive? {
    floatMatmuls.entry(FloatMatmulKey(m: m, k: k, n: n, bias: bias)) {
        // A dense output block: with a row stride oneDNN 2.6 leaves brgemm for gemm:jit.
        DNNL.useThreads(1)
        defer { DNNL.useThreads(kernelThreads) }   // what the thread's other primitives are created with
        let made = dnnlLinearMatmul(m: m, k: k, n: n, type: dnnl_f32, bias: bias)
        // oneDNN's reference kernel is far slower than sgemm: only its optimised ones serve.
        return made.flatMap { $0.implementation.hasPrefix("ref") ? nil : $0 }
    }
}

/// The implementation oneDNN chose for a tile shape (benchmark notes, tests), or nil when it has none.
public func linearTileImplementation(rows m: Int, inFeatures k: Int, columns n: Int, bias: Bool) -> String? {
    floatMatmul(m: m, k: k, n: n, bias: bias)?.implementation
}

/// Buffers for tiles running at the same time: oneDNN's scratchpad (its copy of the weight block) and the tile's
/// output block, one buffer per running tile, grown to the largest shape seen and kept (a few MiB each).
private final class ScratchpadPool: Sendable {
    private let free = Locked<[(pointer: UnsafeMutableRawPointer, bytes: Int)]>([])

    func withScratchpad<T>(bytes: Int, _ body: (UnsafeMutableRawPointer) -> T) -> T {
        var taken = free.withLock { $0.popLast() }
        if let t = taken, t.bytes < bytes {
            t.pointer.deallocate()
            taken = nil
        }
        let buffer = taken ?? (pointer: UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes: bytes)
        defer { free.withLock { $0.append(buffer) } }
        return body(buffer.pointer)
    }
}

private let tileScratchpads = ScratchpadPool()

/// An activation applied to a tile of `linearTiles` as soon as its product is done (while it is in cache), instead
/// of one more pass over the whole output: element by element the same function as `silu` / `geluTanh`.
public enum LinearEpilogue: Sendable {
    case none, silu, geluTanh
}

/// `y = act(x·Wᵀ + b)` for float32 W, in tiles of (group of `groupRows` rows — a batch item's tokens —, block of output
/// columns `linearTileColumns`), each tile on one thread, the tiles spread over `threads`. A tile multiplies its
/// item's first multiple of `linearTileRowQuantum` rows with oneDNN (when `dnnl` and oneDNN has a float32 matmul for
/// the shape) and the remaining rows with single-threaded OpenBLAS sgemm; with `dnnl` false, all rows with sgemm.
/// Each output value is thus one float32 dot product whose kernel and order depend only on its item's row count and
/// the layer's shape. `dnnl` defaults to the `DARKROOM_DNNL_MATMUL` switch; `epilogue` is `act`.
// x: [M, K], w: [O, K], b: [O]? -> y: [M, O]
public func linearTiles(
    _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
    rows m: Int, inFeatures k: Int, outFeatures o: Int, groupRows: Int? = nil, threads: Int,
    epilogue: LinearEpilogue = .none, dnnl: Bool = dnnlMatmulEnabled
) {
    guard m > 0, o > 0 else { return }
    let group = max(1, groupRows ?? m)
    let groups = (m + group - 1) / group
    let columns = linearTileColumns(outFeatures: o)
    let blocks = columns.count - 1
    let tiles = groups * blocks

    // One tile: rows r0 ..< r0 + rows of y, columns c0 ..< c0 + n, then its epilogue.
    func solve(_ tile: Int) {
        let g = tile / blocks, p = tile % blocks
        let r0 = g * group, rows = min(group, m - r0)
        let c0 = columns[p], n = columns[p + 1] - c0
        guard n > 0 else { return }
        product(r0: r0, rows: rows, c0: c0, n: n)
        switch epilogue {
        case .none: break
        case .silu: for r in r0..<(r0 + rows) { siluSpan(y + r * o, y + r * o, c0..<(c0 + n)) }
        case .geluTanh: for r in r0..<(r0 + rows) { geluTanhSpan(y + r * o, y + r * o, c0..<(c0 + n)) }
        }
    }

    func product(r0: Int, rows: Int, c0: Int, n: Int) {
        var done = 0
        let main = rows / linearTileRowQuantum * linearTileRowQuantum
        if dnnl, main > 0, let mm = floatMatmul(m: main, k: k, n: n, bias: b != nil) {
            // oneDNN writes a dense [main, n] block after its scratchpad; the block's rows are then copied into y.
            let pad = (mm.scratchpadSize + 63) / 64 * 64
            let ok = tileScratchpads.withScratchpad(bytes: pad + 4 * main * n) { buffer in
                let block = (buffer + pad).bindMemory(to: Float.self, capacity: main * n)
                var pointers: [UnsafeMutableRawPointer?] = [
                    UnsafeMutableRawPointer(mutating: x + r0 * k), UnsafeMutableRawPointer(mutating: w + c0 * k),
                    UnsafeMutableRawPointer(block),
                ]
                if let b { pointers.append(UnsafeMutableRawPointer(mutating: b + c0)) }
                guard mm.run(pointers, scratchpad: pad > 0 ? buffer : nil, threads: 1) else { return false }
                for r in 0..<main { (y + (r0 + r) * o + c0).update(from: block + r * n, count: n) }
                return true
            }
            if ok { done = main }
        }
        let rest = rows - done
        guard rest > 0 else { return }
        let yr = y + (r0 + done) * o + c0
        var beta: Float = 0
        if let b {
            for r in 0..<rest { (yr + r * o).update(from: b + c0, count: n) }
            beta = 1
        }
        sgemmAsSwitched(transA: false, transB: true, m: rest, n: n, k: k, alpha: 1, x + (r0 + done) * k, lda: k,
                        w + c0 * k, ldb: k, beta: beta, yr, ldc: o)
    }

    // Tiles are handed out one at a time to `threads` workers (a busy core takes fewer); which thread runs a tile
    // does not change its numbers.
    blasThreads.singleThreaded {
        let slots = max(1, min(tiles, threads))
        if slots == 1 {
            for t in 0..<tiles { solve(t) }
            return
        }
        let next = Locked(0)
        parallelFor(slots) { range in
            for _ in range {
                while true {
                    let t = next.withLock { n -> Int in
                        defer { n += 1 }
                        return n
                    }
                    guard t < tiles else { break }
                    solve(t)
                }
            }
        }
    }
}
