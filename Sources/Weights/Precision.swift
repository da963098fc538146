// Weights at a chosen precision: a store that serves another store's tensors as bf16, fp16 or fp32 whatever
// the file holds. Matrices (`matrix`, what linear layers and convolutions read) become 16-bit `HalfMatrix` storage
// owned by the store, so an fp32 checkpoint loaded as bf16 costs half its size in memory; every other tensor
// (`weight`: norms, biases, embeddings, depthwise filters) is served as float32 holding the values rounded to the precision, so the
// numbers are those of a checkpoint saved in it (torch `model.to(torch.bfloat16)`, round to nearest even).
// The converted source pages are given back to the kernel (`madvise(MADV_DONTNEED)`), so a file read once
// for conversion does not stay resident.
import Core
import Foundation
import Tensor

/// The precision a model's weights are held in (config `precision`, `--precision`).
public enum WeightPrecision: String, Sendable, CaseIterable, Codable {
    case bf16, fp16, fp32

    /// The `HalfMatrix` format of a 16-bit precision, nil for fp32.
    public var halfFormat: HalfMatrix.Format? {
        switch self {
        case .bf16: return .bf16
        case .fp16: return .f16
        case .fp32: return nil
        }
    }

    /// Parses "bf16", "fp16", "fp32" (also "bfloat16", "float16", "half", "float32"); nil otherwise.
    public init?(name: String) {
        switch name.lowercased() {
        case "bf16", "bfloat16": self = .bf16
        case "fp16", "f16", "float16", "half": self = .fp16
        case "fp32", "f32", "float32", "float": self = .fp32
        default: return nil
        }
    }
}

/// float32 → bfloat16 bits, round to nearest even (torch's `c10::round_to_nearest_even`); NaN stays NaN.
@inline(__always)
public func floatToBF16Bits(_ f: Float) -> UInt16 {
    if f.isNaN { return 0x7FC0 }
    let bits = f.bitPattern
    return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
}

/// float32 → IEEE half bits, round to nearest even (overflow to ±inf, as torch).
@inline(__always)
public func floatToHalfBits(_ f: Float) -> UInt16 { Float16(f).bitPattern }

/// A `WeightStore` serving `base`'s tensors at `precision` (see the file comment).
public final class PrecisionWeights: WeightStore, @unchecked Sendable {
    public let base: any WeightStore
    public let precision: WeightPrecision
    private let tally = Locked((stored: 0, held: 0))

    /// Bytes of the tensors converted so far as the file stores them, and as this store holds them.
    public var convertedBytes: (stored: Int, held: Int) { tally.withLock { $0 } }

    public init(_ base: any WeightStore, precision: WeightPrecision) {
        self.base = base
        self.precision = precision
    }

    /// `base` itself when `precision` is nil (as stored), else `base` at that precision.
    public static func wrap(_ base: any WeightStore, _ precision: WeightPrecision?) -> any WeightStore {
        guard let precision else { return base }
        return PrecisionWeights(base, precision: precision)
    }

    public func contains(_ name: String) -> Bool { base.contains(name) }
    public func shape(_ name: String) -> [Int]? { base.shape(name) }

    /// The dtype served: the precision's for floating-point tensors.
    public func dtype(_ name: String) -> String? {
        guard let stored = base.dtype(name) else { return nil }
        guard ["F32", "F16", "BF16", "F64"].contains(stored) else { return stored }
        switch precision {
        case .bf16: return "BF16"
        case .fp16: return "F16"
        case .fp32: return "F32"
        }
    }

    /// Already in the precision: served as the base serves it.
    private func isNative(_ name: String) -> Bool {
        switch (precision, base.dtype(name)) {
        case (.bf16, "BF16"), (.fp16, "F16"), (.fp32, "F32"): return true
        case (_, let d): return !["F32", "F16", "BF16", "F64"].contains(d ?? "")
        }
    }

    public func weight(_ name: String) throws -> WeightView {
        let source = try base.weight(name)
        guard !isNative(name), let format = precision.halfFormat else { return source }
        let owned = OwnedFloats(count: source.count)
        round(owned.pointer, source.pointer, count: source.count, format: format)
        releasePages(name)
        count(name, held: 4 * source.count)
        return owned.view(shape: source.shape)
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let format = precision.halfFormat else { return .float(try weight(name)) }
        if isNative(name) { return try base.matrix(name) }
        let source = try base.weight(name)
        let owned = OwnedHalves(count: source.count)
        switch format {
        case .bf16: for i in 0..<source.count { owned.pointer[i] = floatToBF16Bits(source.pointer[i]) }
        case .f16: for i in 0..<source.count { owned.pointer[i] = floatToHalfBits(source.pointer[i]) }
        }
        releasePages(name)
        count(name, held: 2 * source.count)
        return .half(HalfMatrix(format: format, shape: source.shape, pointer: UnsafePointer(owned.pointer), owner: owned))
    }

    private func count(_ name: String, held: Int) {
        let width = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2][base.dtype(name) ?? ""] ?? 4
        let stored = width * (base.shape(name)?.reduce(1, *) ?? 0)
        tally.withLock { $0.stored += stored; $0.held += held }
    }

    private func releasePages(_ name: String) {
        if let file = base as? SafeTensorsFile { file.releasePages(name) }
        if let sharded = base as? ShardedWeights { sharded.releasePages(name) }
    }
}

// x: [count] -> y: [count], each value rounded to the 16-bit format and widened back
func round(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int, format: HalfMatrix.Format) {
    switch format {
    case .bf16: for i in 0..<count { y[i] = Float(bitPattern: UInt32(floatToBF16Bits(x[i])) << 16) }
    case .f16: for i in 0..<count { y[i] = Float(Float16(x[i])) }
    }
}

extension SafeTensorsFile {
    /// Drops the resident pages lying wholly inside tensor `name`'s bytes (the mapping is private and
    /// read-only: a later read faults them in again from the file). Used after a tensor was converted.
    public func releasePages(_ name: String) {
        guard let range = byteRange(name) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }
}

extension ShardedWeights {
    public func releasePages(_ name: String) {
        for shard in shards where shard.contains(name) { shard.releasePages(name) }
    }
}
