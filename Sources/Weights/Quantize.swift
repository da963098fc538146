// `darkroom models quantize`: a copy of a diffusers pipeline folder whose linear weights are int8 with one
// float32 scale per output channel (symmetric, `quantizeRows`), or whose floating-point tensors are bf16; every
// other file is copied unchanged. The layout (tensor names, dtypes, the marker file) is docs/engine.md §1.3.
// The copy is built in a temporary folder beside OUT and renamed into place, so a failure leaves no OUT.
import Core
import Foundation
import Tensor

/// Names of the int8 layout (docs/engine.md §1.3).
public enum Int8Layout {
    /// `<weight name>_scale`: the F32 `[out]` scales of the I8 tensor `<weight name>`.
    public static let scaleSuffix = "_scale"
    /// The marker at the pipeline folder's root saying how its weights were converted.
    public static let markerFile = "darkroom_quantization.json"
    /// `__metadata__` key in every rewritten safetensors file (value: the target, "int8" or "bf16").
    public static let metadataKey = "darkroom_quantization"
}

/// What `models quantize` converts to.
public enum QuantizeTarget: String, Sendable, CaseIterable {
    case int8, bf16
}

/// Why a folder could not be quantized. The message names the path and what to do.
public struct QuantizeError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case notAModelFolder = "not_a_model_folder"   // no model_index.json
        case outputExists = "output_exists"           // OUT is already there
        case unknownComponent = "unknown_component"   // --components names a folder the pipeline lacks
        case nonFinite = "non_finite_weight"          // a weight holds NaN or ±∞
        case io = "io_failed"                         // copying, reading or writing failed
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// What a quantize run did.
public struct QuantizeReport: Sendable, Equatable {
    /// Component folders whose safetensors were rewritten.
    public var components: [String] = []
    /// Tensors converted (int8: matrices quantized; bf16: floating-point tensors rounded).
    public var tensorsConverted = 0
    /// Bytes of the converted tensors before and after (int8: the I8 bytes plus their scales).
    public var bytesBefore = 0
    public var bytesAfter = 0
}

public enum ModelQuantizer {
    /// Components converted when none are named: everything with weights except the autoencoder, whose
    /// convolutions hold almost all of its FLOPs and whose few linear layers are not worth its quality.
    public static func defaultComponents(_ folder: URL) -> [String] {
        componentFolders(folder).filter { !["vae", "vqvae", "movq"].contains($0) }
    }

    /// Sub-folders of the pipeline folder holding safetensors files.
    static func componentFolders(_ folder: URL) -> [String] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: folder.path)) ?? []).sorted().filter { name in
            let files = (try? fm.contentsOfDirectory(atPath: folder.appendingPathComponent(name).path)) ?? []
            return files.contains { $0.hasSuffix(".safetensors") }
        }
    }

    /// Whether a tensor is a matrix a linear layer multiplies by: a float `.weight` of shape `[out, in]` with at
    /// least 8 inputs, not an embedding table (looked up by row, never multiplied).
    public static func isLinearWeight(_ name: String, _ info: SafeTensorInfo) -> Bool {
        guard name.hasSuffix(".weight"), info.shape.count == 2, info.shape[1] >= 8, info.shape[0] >= 1,
              [.F32, .F16, .BF16, .F64].contains(info.dtype) else { return false }
        let module = name.dropLast(".weight".count).split(separator: ".").last.map(String.init) ?? ""
        return !(module.contains("embedding") || ["embed_tokens", "shared", "relative_attention_bias"].contains(module))
    }

    /// Writes the converted copy of pipeline `folder` to `output` (which must not exist).
    /// `components` nil: `defaultComponents`.
    public static func quantize(folder: URL, to target: QuantizeTarget, output: URL,
                                components: [String]? = nil) throws -> QuantizeReport {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDir), isDir.boolValue,
              fm.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) else {
            throw QuantizeError(.notAModelFolder, "\(folder.path) is not a model folder (no model_index.json): give a diffusers pipeline folder")
        }
        guard !fm.fileExists(atPath: output.path) else {
            throw QuantizeError(.outputExists, "\(output.path) already exists: give a new folder for -o (nothing is overwritten)")
        }
        let available = componentFolders(folder)
        let chosen = components ?? defaultComponents(folder)
        for c in chosen where !available.contains(c) {
            throw QuantizeError(.unknownComponent, "\(folder.lastPathComponent) has no component folder \"\(c)\" with safetensors (it has: \(available.joined(separator: ", ")))")
        }
        let parent = output.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(output.lastPathComponent).tmp-\(getpid())")
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw QuantizeError(.io, "cannot create \(staging.path): \(error.localizedDescription)")
        }
        do {
            var report = QuantizeReport(components: chosen)
            try copyTree(folder, staging, convert: Set(chosen), top: true, target: target, report: &report)
            try writeMarker(staging, source: folder, target: target, report: report)
            do { try fm.moveItem(at: staging, to: output) } catch {
                throw QuantizeError(.io, "cannot rename \(staging.path) to \(output.path): \(error.localizedDescription)")
            }
            return report
        } catch {
            try? fm.removeItem(at: staging)
            if let e = error as? QuantizeError { throw e }
            if let e = error as? WeightError { throw QuantizeError(.io, e.message) }
            throw QuantizeError(.io, "\(error)")
        }
    }

    /// Copies `from` into `to` file by file; safetensors files (and their shard index) inside a converted
    /// component are rewritten.
    private static func copyTree(_ from: URL, _ to: URL, convert: Set<String>, top: Bool, target: QuantizeTarget,
                                 report: inout QuantizeReport) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: from.path).sorted() {
            let src = from.appendingPathComponent(name), dst = to.appendingPathComponent(name)
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: src.path, isDirectory: &isDir)
            if isDir.boolValue {
                try fm.createDirectory(at: dst, withIntermediateDirectories: false)
                // Only a component folder's own files are converted (its sub-folders are copied as they are).
                try copyTree(src, dst, convert: top && convert.contains(name) ? [""] : [], top: false, target: target,
                             report: &report)
            } else if !top, convert.contains(""), name.hasSuffix(".safetensors") {
                try convertFile(src, dst, target: target, report: &report)
            } else if !top, convert.contains(""), name.hasSuffix(".safetensors.index.json"), target == .int8 {
                try rewriteIndex(src, dst)
            } else if top, name == Int8Layout.markerFile {
                continue   // a folder converted before: its marker is replaced by this run's
            } else {
                do { try fm.copyItem(at: src, to: dst) } catch {
                    throw QuantizeError(.io, "cannot copy \(src.path): \(error.localizedDescription)")
                }
            }
        }
    }

    /// One safetensors file: linear weights to I8 + `_scale` (int8), or every float tensor to BF16 (bf16).
    private static func convertFile(_ src: URL, _ dst: URL, target: QuantizeTarget, report: inout QuantizeReport) throws {
        let file = try SafeTensorsFile(url: src)
        var entries: [SafeTensorsWriter.RawEntry] = []
        var converted = 0, before = 0, after = 0
        for name in file.names {
            guard let info = file.info(name) else { continue }
            let copy = SafeTensorsWriter.RawEntry(name: name, dtype: info.dtype, shape: info.shape) {
                try file.rawBytes(name)
            }
            switch target {
            case .int8:
                guard isLinearWeight(name, info), !file.contains(name + Int8Layout.scaleSuffix) else {
                    entries.append(copy)
                    continue
                }
                let rows = info.shape[0], cols = info.count / rows
                // Quantized once, when the writer asks for the I8 bytes; the scales are kept for the next entry.
                let scales = ScalesBox()
                entries.append(.init(name: name, dtype: .I8, shape: info.shape) {
                    let w = try file.weight(name)
                    var q = [UInt8](repeating: 0, count: info.count)
                    var s = [Float](repeating: 0, count: rows)
                    q.withUnsafeMutableBufferPointer { qb in
                        qb.baseAddress!.withMemoryRebound(to: Int8.self, capacity: info.count) { qp in
                            quantizeRows(qp, &s, w.pointer, rows: rows, columns: cols)
                        }
                    }
                    if let bad = s.firstIndex(where: { !$0.isFinite }) {
                        throw QuantizeError(.nonFinite, "\(src.path): \(name) row \(bad) holds NaN or ±∞; fix the checkpoint (nothing was written)")
                    }
                    file.releasePages(name)
                    scales.values = s
                    return q
                })
                entries.append(.init(name: name + Int8Layout.scaleSuffix, dtype: .F32, shape: [rows]) {
                    defer { scales.values = [] }
                    return SafeTensorsWriter.littleEndianBytes(scales.values)
                })
                converted += 1
                before += info.end - info.begin
                after += info.count + 4 * rows
            case .bf16:
                guard [.F32, .F64, .F16].contains(info.dtype) else {
                    entries.append(copy)
                    continue
                }
                entries.append(.init(name: name, dtype: .BF16, shape: info.shape) {
                    let w = try file.weight(name)
                    var out = [UInt8](repeating: 0, count: 2 * info.count)
                    for i in 0..<info.count {
                        let b = floatToBF16Bits(w.pointer[i]).littleEndian
                        out[2 * i] = UInt8(truncatingIfNeeded: b)
                        out[2 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
                    }
                    file.releasePages(name)
                    return out
                })
                converted += 1
                before += info.end - info.begin
                after += 2 * info.count
            }
        }
        var metadata = file.metadata
        metadata[Int8Layout.metadataKey] = target.rawValue
        try SafeTensorsWriter.write(entries: entries, metadata: metadata, to: dst)
        report.tensorsConverted += converted
        report.bytesBefore += before
        report.bytesAfter += after
    }

    /// A shard index with every quantized weight's `_scale` mapped to the weight's shard.
    private static func rewriteIndex(_ src: URL, _ dst: URL) throws {
        guard let data = FileManager.default.contents(atPath: src.path),
              var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              var map = object["weight_map"] as? [String: String] else {
            throw QuantizeError(.io, "\(src.path): not a safetensors index (JSON with a weight_map)")
        }
        let dir = src.deletingLastPathComponent()
        var files: [String: SafeTensorsFile] = [:]
        for (tensor, shard) in map {
            if files[shard] == nil { files[shard] = try SafeTensorsFile(url: dir.appendingPathComponent(shard)) }
            if let info = files[shard]?.info(tensor), isLinearWeight(tensor, info) { map[tensor + Int8Layout.scaleSuffix] = shard }
        }
        object["weight_map"] = map
        try writeJSON(object, to: dst)
    }

    private static func writeMarker(_ folder: URL, source: URL, target: QuantizeTarget, report: QuantizeReport) throws {
        var marker: [String: Any] = [
            "format": "darkroom-\(target.rawValue)", "version": 1, "source": source.lastPathComponent,
            "components": report.components, "tensors_converted": report.tensorsConverted,
            "bytes_before": report.bytesBefore, "bytes_after": report.bytesAfter,
        ]
        if target == .int8 {
            marker["scheme"] = "symmetric per output channel: scale = max|w[o]| / 127, q = round_half_even(w / scale), w ≈ q · scale"
            marker["scale_suffix"] = Int8Layout.scaleSuffix
        }
        try writeJSON(marker, to: folder.appendingPathComponent(Int8Layout.markerFile))
    }

    private static func writeJSON(_ object: [String: Any], to url: URL) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try data.write(to: url)
        } catch {
            throw QuantizeError(.io, "cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// The scales of the matrix just quantized, handed from its I8 entry to its `_scale` entry.
private final class ScalesBox { var values: [Float] = [] }

extension SafeTensorsFile {
    /// Tensor `name`'s bytes as stored.
    public func rawBytes(_ name: String) throws -> [UInt8] {
        guard let range = byteRange(name) else {
            throw WeightError(.missingTensor, file: url.lastPathComponent, "no tensor named \(name)")
        }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: range.lowerBound), count: range.count))
        releasePages(name)
        return bytes
    }
}
