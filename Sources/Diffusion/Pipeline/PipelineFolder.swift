// A diffusers pipeline folder on disk (docs/engine.md §1.2): model_index.json (pipeline_utils.py:216), one
// sub-folder per component with config.json + diffusion_pytorch_model(.fp16)(.safetensors | -0000k-of-0000n +
// .safetensors.index.json), scheduler/scheduler_config.json. Component configs keep only what the file says;
// the model's Config type applies the class defaults for missing keys. Legacy `"_class_name":
// "Transformer2DModel"` is remapped by norm_type (model_loading_utils.py:53-58, 117-134).
import Foundation
import Weights

/// One model component folder (transformer/, unet/, vae/).
public struct ComponentFolder: Sendable {
    /// Sub-folder name, e.g. "transformer".
    public let name: String
    public let url: URL
    /// Effective diffusers class after legacy remapping (e.g. "DiTTransformer2DModel").
    public let className: String
    /// config.json as parsed (including `_class_name` / `_diffusers_version`), for inspection.
    public let config: [String: JSONValue]
    /// config.json's bytes, which model `Config` types decode directly.
    public let configData: Data

    /// Decodes config.json's bytes into a model's `Config` (its `Decodable` init supplies defaults for
    /// missing keys).
    public func decodeConfig<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: configData)
        } catch let e as DecodingError {
            throw PipelineError(.badConfig, "\(name)/config.json: \(Self.describe(e))")
        } catch {
            throw PipelineError(.badConfig, "\(name)/config.json: \(error)")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String { c.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .typeMismatch(_, let c): return "wrong type for \(path(c.codingPath))"
        case .valueNotFound(_, let c): return "missing value for \(path(c.codingPath))"
        case .keyNotFound(let k, _): return "missing key \(k.stringValue)"
        case .dataCorrupted(let c): return "invalid value at \(path(c.codingPath)): \(c.debugDescription)"
        @unknown default: return "invalid config"
        }
    }

    /// The weight file names looked for, in order (variant "fp16" → the .fp16. names).
    public static func weightCandidates(variant: String?) -> (single: String, index: String) {
        if let v = variant {
            return ("diffusion_pytorch_model.\(v).safetensors", "diffusion_pytorch_model.safetensors.index.\(v).json")
        }
        return ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json")
    }

    /// Opens the component's weights: the single file, else the sharded index; `variant` nil tries the plain
    /// names first and then "fp16". `precision` nil serves them as stored, else converted (`PrecisionWeights`).
    public func openWeights(variant: String? = nil, precision: WeightPrecision? = nil) throws -> any WeightStore {
        PrecisionWeights.wrap(try openStoredWeights(variant: variant), precision)
    }

    func openStoredWeights(variant: String?) throws -> any WeightStore {
        let fm = FileManager.default
        let variants: [String?] = variant.map { [$0] } ?? [nil, "fp16"]
        for v in variants {
            let (single, index) = Self.weightCandidates(variant: v)
            let s = url.appendingPathComponent(single)
            if fm.fileExists(atPath: s.path) { return try SafeTensorsFile(url: s) }
            let i = url.appendingPathComponent(index)
            if fm.fileExists(atPath: i.path) { return try ShardedWeights(indexURL: i) }
        }
        let hasBin = fm.fileExists(atPath: url.appendingPathComponent("diffusion_pytorch_model.bin").path)
        throw PipelineError(.missingWeights, hasBin
            ? "\(name)/: only PyTorch .bin weights found; convert them to safetensors"
            : "\(name)/: no diffusion_pytorch_model.safetensors (or sharded index) found")
    }
}

/// A pipeline folder: model_index.json and its components.
public struct PipelineFolder: Sendable {
    public let url: URL
    /// model_index `_class_name`, e.g. "DiTPipeline".
    public let className: String
    public let diffusersVersion: String?
    /// Component name → [library, class]; nil for `[null, null]` (absent).
    public let components: [String: [String]?]
    /// `id2label` as written (class id → comma-separated names).
    public let id2label: [Int: String]
    /// Label → class id, each id2label value split on "," and stripped (pipeline_dit.py:68-74).
    public let labels: [String: Int]
    /// `transformer/` (or `unet/`).
    public let transformer: ComponentFolder
    /// `vae/`; nil for pixel-space pipelines.
    public let vae: ComponentFolder?
    /// scheduler/scheduler_config.json.
    public let scheduler: SchedulerConfig

    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
            throw PipelineError(.notAFolder, "\(url.path) is not a folder")
        }
        let indexURL = url.appendingPathComponent("model_index.json")
        guard let data = fm.contents(atPath: indexURL.path) else {
            throw PipelineError(.badModelIndex, "\(url.lastPathComponent)/model_index.json is missing or unreadable")
        }
        guard let json = try? JSONValue.parse(data), let index = json.objectValue else {
            throw PipelineError(.badModelIndex, "\(url.lastPathComponent)/model_index.json is not a JSON object")
        }
        className = index["_class_name"]?.stringValue ?? ""
        diffusersVersion = index["_diffusers_version"]?.stringValue

        var comps: [String: [String]?] = [:]
        for (k, v) in index where !k.hasPrefix("_") {
            guard let a = v.arrayValue else { continue }   // non-list values are __init__ kwargs (id2label)
            if a.count == 2, a[0].isNull, a[1].isNull { comps[k] = .some(nil); continue }
            guard a.count == 2, let lib = a[0].stringValue, let cls = a[1].stringValue else {
                throw PipelineError(.badModelIndex, "model_index.json: component \(k) must be [library, class]")
            }
            comps[k] = .some([lib, cls])
        }
        components = comps

        var id2label: [Int: String] = [:]
        var labels: [String: Int] = [:]
        if let raw = index["id2label"], !raw.isNull {
            guard let o = raw.objectValue else {
                throw PipelineError(.badModelIndex, "model_index.json: id2label must be an object")
            }
            for (k, v) in o {
                guard let id = Int(k), let text = v.stringValue else {
                    throw PipelineError(.badModelIndex, "model_index.json: id2label entry \(k) is not id → string")
                }
                id2label[id] = text
            }
            // Python walks id2label in file order (ascending ids in every real file); a name listed under two
            // ids maps to the later one. Walk ids ascending for the same, deterministic result.
            for id in id2label.keys.sorted() {
                for part in id2label[id]!.split(separator: ",", omittingEmptySubsequences: false) {
                    labels[part.trimmingCharacters(in: .whitespaces)] = id
                }
            }
        }
        self.id2label = id2label
        self.labels = labels

        func present(_ name: String) -> Bool {
            if let c = comps[name] { return c != nil }
            return fm.fileExists(atPath: url.appendingPathComponent(name).appendingPathComponent("config.json").path)
        }
        let tName = present("transformer") ? "transformer" : (present("unet") ? "unet" : nil)
        guard let tName else {
            throw PipelineError(.badModelIndex, "\(url.lastPathComponent): no transformer/ or unet/ component")
        }
        transformer = try Self.component(url, tName, declared: comps[tName] ?? nil)
        vae = present("vae") ? try Self.component(url, "vae", declared: comps["vae"] ?? nil) : nil

        let schedURL = url.appendingPathComponent("scheduler").appendingPathComponent("scheduler_config.json")
        if fm.fileExists(atPath: schedURL.path) {
            do { scheduler = try SchedulerConfig(contentsOf: schedURL) } catch {
                throw PipelineError(.badConfig, "scheduler/scheduler_config.json: \(error)")
            }
        } else {
            // No scheduler folder: the declared class with all its defaults.
            let declared = (comps["scheduler"] ?? nil)?[1]
            scheduler = SchedulerConfig(className: declared, values: [:])
        }
    }

    public init(path: String) throws { try self.init(url: URL(fileURLWithPath: path)) }

    static func component(_ root: URL, _ name: String, declared: [String]?) throws -> ComponentFolder {
        let dir = root.appendingPathComponent(name)
        let cfgURL = dir.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: cfgURL.path) else {
            throw PipelineError(.badConfig, "\(name)/config.json is missing or unreadable")
        }
        guard let json = try? JSONValue.parse(data), let cfg = json.objectValue else {
            throw PipelineError(.badConfig, "\(name)/config.json is not a JSON object")
        }
        var cls = cfg["_class_name"]?.stringValue ?? declared?[1] ?? ""
        if cls == "Transformer2DModel" || (cls.isEmpty && declared?[1] == "Transformer2DModel") {
            switch cfg["norm_type"]?.stringValue {
            case "ada_norm_zero": cls = "DiTTransformer2DModel"
            case "ada_norm_single": cls = "PixArtTransformer2DModel"
            case let other:
                throw PipelineError(.unsupportedComponent,
                                    "\(name)/config.json: Transformer2DModel with norm_type \(other ?? "missing") is not supported")
            }
        }
        return ComponentFolder(name: name, url: dir, className: cls, config: cfg, configData: data)
    }

    /// The class id of a label name (exact match after the split/strip), or a number given as text.
    public func classID(for label: String) -> Int? {
        if let id = labels[label] { return id }
        let t = label.trimmingCharacters(in: .whitespaces)
        if let id = labels[t] { return id }
        return Int(t)
    }
}
