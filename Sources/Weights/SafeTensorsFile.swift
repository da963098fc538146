// safetensors reader: the file is mapped read-only; F32 tensors are served straight from the mapping,
// F16/BF16/F64 are converted to owned float32 buffers on request (`weight`), or F16/BF16 matrices are
// served 16-bit from the mapping (`matrix`) for layers that widen them per block.
// Format and validation as huggingface/safetensors safetensors/src/tensor.rs (`read_metadata`,
// `Metadata::validate`); see docs/engine.md §1.1.
import Foundation
import Tensor

/// Element types of the safetensors format (safetensors/src/tensor.rs `Dtype`).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64: return 8
        }
    }
}

/// One tensor entry of a safetensors header.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public let begin: Int
    public let end: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A validated, memory-mapped `.safetensors` file. Conforms to `WeightStore`.
public final class SafeTensorsFile: WeightStore, @unchecked Sendable {
    /// Largest header the reference reader accepts (safetensors `MAX_HEADER_SIZE`).
    public static let maxHeaderSize = 100_000_000

    public let url: URL
    public let metadata: [String: String]
    public let tensors: [String: SafeTensorInfo]
    /// Names in data order.
    public let names: [String]

    private let base: UnsafeRawPointer   // start of the mapping
    private let mappedSize: Int
    private let dataStart: Int           // 8 + N

    private var fileName: String { url.lastPathComponent }

    public init(url: URL) throws {
        self.url = url
        let name = url.lastPathComponent
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw WeightError(.unreadable, file: name, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw WeightError(.unreadable, file: name, "cannot stat: \(String(cString: strerror(errno)))")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw WeightError(.truncated, file: name, "truncated: \(size) bytes, too short for the 8-byte header length")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw WeightError(.unreadable, file: name, "cannot map: \(String(cString: strerror(errno)))")
        }
        let raw = UnsafeRawPointer(map)
        do {
            let parsed = try Self.parseHeader(raw, size: size, fileName: name)
            self.base = raw
            self.mappedSize = size
            self.dataStart = parsed.dataStart
            self.metadata = parsed.metadata
            self.tensors = Dictionary(uniqueKeysWithValues: parsed.infos.map { ($0.name, $0) })
            self.names = parsed.infos.map(\.name)
        } catch {
            munmap(map, size)
            throw error
        }
    }

    public convenience init(path: String) throws { try self.init(url: URL(fileURLWithPath: path)) }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), mappedSize) }

    struct Parsed { var dataStart: Int; var metadata: [String: String]; var infos: [SafeTensorInfo] }

    static func parseHeader(_ raw: UnsafeRawPointer, size: Int, fileName name: String) throws -> Parsed {
        var n64: UInt64 = 0
        withUnsafeMutableBytes(of: &n64) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: 8)) }
        n64 = UInt64(littleEndian: n64)
        guard n64 <= UInt64(maxHeaderSize) else {
            throw WeightError(.corruptHeader, file: name, "corrupt header: header length \(n64) exceeds \(maxHeaderSize) bytes")
        }
        let n = Int(n64)
        guard 8 + n <= size else {
            throw WeightError(.truncated, file: name, "truncated: header needs \(8 + n) bytes, file has \(size)")
        }
        let headerBytes = Data(bytes: raw + 8, count: n)
        guard let text = String(data: headerBytes, encoding: .utf8), text.first == "{" else {
            throw WeightError(.corruptHeader, file: name, "corrupt header: not a UTF-8 JSON object")
        }
        guard let json = try? JSONValue.parse(headerBytes), let object = json.objectValue else {
            throw WeightError(.corruptHeader, file: name, "corrupt header: JSON does not parse")
        }
        var metadata: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        for (key, value) in object {
            if key == "__metadata__" {
                guard let meta = value.objectValue else {
                    throw WeightError(.corruptHeader, file: name, "corrupt header: __metadata__ is not an object")
                }
                for (k, v) in meta {
                    guard let s = v.stringValue else {
                        throw WeightError(.corruptHeader, file: name, "corrupt header: __metadata__[\(k)] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            infos.append(try entry(key, value, fileName: name))
        }
        infos.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for info in infos {
            guard info.begin == expected else {
                throw WeightError(.badOffsets, file: name,
                                  "bad offsets: tensor \(info.name) starts at \(info.begin), expected \(expected) (gap or overlap)")
            }
            let (bytes, overflow) = info.count.multipliedReportingOverflow(by: info.dtype.byteSize)
            guard !overflow, info.end - info.begin == bytes else {
                throw WeightError(.badOffsets, file: name,
                                  "bad offsets: tensor \(info.name) spans \(info.end - info.begin) bytes, shape \(info.shape) of \(info.dtype.rawValue) needs \(bytes)")
            }
            expected = info.end
        }
        let total = 8 + n + expected
        if total > size {
            throw WeightError(.truncated, file: name, "truncated: tensors need \(total) bytes, file has \(size)")
        }
        if total < size {
            throw WeightError(.trailingBytes, file: name, "corrupt: \(size - total) bytes after the last tensor")
        }
        return Parsed(dataStart: 8 + n, metadata: metadata, infos: infos)
    }

    static func entry(_ key: String, _ value: JSONValue, fileName name: String) throws -> SafeTensorInfo {
        guard let o = value.objectValue else {
            throw WeightError(.badEntry, file: name, "corrupt header: entry \(key) is not an object")
        }
        guard let d = o["dtype"]?.stringValue else {
            throw WeightError(.badEntry, file: name, "corrupt header: tensor \(key) has no dtype")
        }
        guard let dtype = SafeTensorsDType(rawValue: d) else {
            throw WeightError(.unknownDType, file: name, "unknown dtype \(d) for tensor \(key)")
        }
        guard let shapeValues = o["shape"]?.arrayValue else {
            throw WeightError(.badEntry, file: name, "corrupt header: tensor \(key) has no shape")
        }
        var shape: [Int] = []
        var count = 1
        for v in shapeValues {
            guard let dim = v.intValue, dim >= 0 else {
                throw WeightError(.badEntry, file: name, "corrupt header: tensor \(key) has an invalid shape")
            }
            let (c, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw WeightError(.badEntry, file: name, "corrupt header: tensor \(key) shape overflows")
            }
            count = c
            shape.append(dim)
        }
        guard let offs = o["data_offsets"]?.arrayValue, offs.count == 2,
              let begin = offs[0].intValue, let end = offs[1].intValue, begin >= 0, end >= begin
        else {
            throw WeightError(.badEntry, file: name, "corrupt header: tensor \(key) has invalid data_offsets")
        }
        return SafeTensorInfo(name: key, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    // MARK: WeightStore

    public func dtype(_ name: String) -> String? { tensors[name]?.dtype.rawValue }

    public func shape(_ name: String) -> [Int]? { tensors[name]?.shape }

    /// A matrix for `linear`: F16/BF16 stay 16-bit in the mapping (copied only when misaligned),
    /// everything else as `weight`.
    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let info = tensors[name] else {
            throw WeightError(.missingTensor, file: fileName, "no tensor named \(name)")
        }
        let format: HalfMatrix.Format
        switch info.dtype {
        case .BF16: format = .bf16
        case .F16: format = .f16
        case .I8: return .int8(try int8Matrix(info))
        default: return .float(try weight(name))
        }
        let src = base + dataStart + info.begin
        if Int(bitPattern: src) % MemoryLayout<UInt16>.alignment == 0 {
            return .half(HalfMatrix(format: format, shape: info.shape, pointer: src.assumingMemoryBound(to: UInt16.self), owner: self))
        }
        let owned = OwnedHalves(count: info.count)
        memcpy(owned.pointer, src, 2 * info.count)
        return .half(HalfMatrix(format: format, shape: info.shape, pointer: UnsafePointer(owned.pointer), owner: owned))
    }

    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    public func info(_ name: String) -> SafeTensorInfo? { tensors[name] }

    /// Addresses of tensor `name`'s bytes in the mapping.
    func byteRange(_ name: String) -> Range<Int>? {
        guard let info = tensors[name] else { return nil }
        let start = Int(bitPattern: base) + dataStart + info.begin
        return start..<(start + info.end - info.begin)
    }

    public func weight(_ name: String) throws -> WeightView {
        guard let info = tensors[name] else {
            throw WeightError(.missingTensor, file: fileName, "no tensor named \(name)")
        }
        let src = base + dataStart + info.begin
        let count = info.count
        switch info.dtype {
        case .F32:
            if Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
                return WeightView(shape: info.shape, pointer: src.assumingMemoryBound(to: Float.self), owner: self)
            }
            let owned = OwnedFloats(count: count)
            memcpy(owned.pointer, src, count * 4)
            return owned.view(shape: info.shape)
        case .F16:
            let owned = OwnedFloats(count: count)
            for i in 0..<count { owned.pointer[i] = halfBitsToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
            return owned.view(shape: info.shape)
        case .BF16:
            let owned = OwnedFloats(count: count)
            for i in 0..<count {
                let b = src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                owned.pointer[i] = Float(bitPattern: UInt32(b) << 16)
            }
            return owned.view(shape: info.shape)
        case .F64:
            let owned = OwnedFloats(count: count)
            for i in 0..<count {
                owned.pointer[i] = Float(Double(bitPattern: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
            }
            return owned.view(shape: info.shape)
        case .I8 where contains(name + Int8Layout.scaleSuffix):
            let q = try int8Matrix(info)   // a quantized matrix read whole (a layer that does not multiply by it)
            let owned = OwnedFloats(count: count)
            dequantizeRows(owned.pointer, q.pointer, q.scales, rows: q.rows, columns: q.columns)
            return owned.view(shape: info.shape)
        default:
            throw WeightError(.notFloat, file: fileName, "tensor \(name) is \(info.dtype.rawValue), not a floating-point type")
        }
    }

    /// An I8 tensor with its per-row F32 scales `<name>_scale` (docs/engine.md §1.3), served from the mapping.
    private func int8Matrix(_ info: SafeTensorInfo) throws -> Int8Matrix {
        let scaleName = info.name + Int8Layout.scaleSuffix
        guard let rows = info.shape.first, info.shape.count >= 2 else {
            throw WeightError(.badEntry, file: fileName, "int8 tensor \(info.name) has shape \(info.shape); a quantized matrix has at least 2 dimensions")
        }
        guard let s = tensors[scaleName] else {
            throw WeightError(.missingTensor, file: fileName, "int8 tensor \(info.name) has no scales \(scaleName) (not a Darkroom int8 file?)")
        }
        guard s.dtype == .F32, s.shape == [rows] else {
            throw WeightError(.badEntry, file: fileName, "scales \(scaleName) are \(s.dtype.rawValue) \(s.shape), expected F32 [\(rows)]")
        }
        let q = (base + dataStart + info.begin).assumingMemoryBound(to: Int8.self)
        let src = base + dataStart + s.begin
        if Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
            return Int8Matrix(shape: info.shape, pointer: q, scales: src.assumingMemoryBound(to: Float.self), owner: self)
        }
        let owned = OwnedFloats(count: rows)
        memcpy(owned.pointer, src, 4 * rows)
        return Int8Matrix(shape: info.shape, pointer: q, scales: UnsafePointer(owned.pointer), owner: Owners(self, owned))
    }
}

/// Keeps two owners alive (a mapping and an aligned copy of part of it).
final class Owners: @unchecked Sendable {
    let first: AnyObject, second: AnyObject
    init(_ first: AnyObject, _ second: AnyObject) { self.first = first; self.second = second }
}

/// An owned float32 buffer that a `WeightView` keeps alive.
final class OwnedFloats: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
    }
    deinit { pointer.deallocate() }
    func view(shape: [Int]) -> WeightView { WeightView(shape: shape, pointer: UnsafePointer(pointer), owner: self) }
}

/// An owned copy of a misaligned 16-bit tensor that a `HalfMatrix` keeps alive.
final class OwnedHalves: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}
