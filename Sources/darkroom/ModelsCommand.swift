import ArgumentParser
import Config
import Diffusion
import Foundation
import Jobs
import Worker
import Weights

/// `darkroom models list|inspect|quantize`: what a model folder holds, and int8/bf16 copies of it, without a broker.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the model folders under model_dir, inspect one pipeline folder, or write an int8/bf16 copy of one.",
        subcommands: [Inspect.self, List.self, Quantize.self], defaultSubcommand: List.self)

    struct Quantize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a copy of a pipeline folder with int8 linear weights (per-output-channel scales) or bf16 weights.",
            discussion: """
                int8: every linear weight [out, in] of the converted components becomes I8 plus an F32 scale per \
                output channel (<name>_scale); embeddings, norms, convolutions and all other files are copied \
                unchanged. bf16: every floating-point tensor of the converted components becomes BF16. \
                The folder gets a darkroom_quantization.json marker (docs/engine.md §1.4).
                """)
        @Argument(help: "The pipeline folder to convert (with model_index.json).")
        var folder: String
        @Option(name: .long, help: "What to convert to: int8 or bf16.")
        var to: String
        @Option(name: [.customShort("o"), .long], help: "The new folder to write (must not exist).")
        var output: String
        @Option(name: .long, help: "Comma-separated component folders to convert (default: all but the autoencoder).")
        var components: String?

        func run() async throws {
            guard let target = QuantizeTarget(rawValue: to.lowercased()) else {
                throw CLIError("unknown --to \"\(to)\": use one of \(QuantizeTarget.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let names = components?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let started = Date()
            let report: QuantizeReport
            do {
                report = try ModelQuantizer.quantize(folder: URL(fileURLWithPath: folder), to: target,
                                                     output: URL(fileURLWithPath: output), components: names)
            } catch let e as QuantizeError {
                throw CLIError(oneLine(e.message))
            }
            let mb = { (n: Int) in String(format: "%.1f MB", Double(n) / 1e6) }
            print("wrote \(output): \(report.tensorsConverted) tensors of \(report.components.joined(separator: ", ")) to \(target.rawValue), "
                  + "\(mb(report.bytesBefore)) -> \(mb(report.bytesAfter)) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the model folders under model_dir.")
        @OptionGroup var local: LocalOptions

        func run() async throws {
            let cfg = try local.load()
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: cfg.modelDir)) ?? []).sorted().filter {
                FileManager.default.fileExists(atPath: cfg.modelPath($0) + "/model_index.json")
            }
            guard !names.isEmpty else {
                warn("no model folders (with a model_index.json) in \(cfg.modelDir)")
                return
            }
            for name in names {
                let marks = [name == cfg.defaultModel ? "default" : nil, cfg.models.contains(name) ? "served" : nil].compactMap { $0 }
                print(name + (marks.isEmpty ? "" : "  (\(marks.joined(separator: ", ")))") + "  " + cfg.modelPath(name))
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a pipeline's components, parameter counts, scheduler, sizes, defaults and labels.")
        @OptionGroup var local: LocalOptions
        @Argument(help: "A pipeline folder, or a model name under model_dir (default: default_model).")
        var model: String?

        func run() async throws {
            let cfg = try local.load()
            let text = try TextReport.lines(LocalModel.locate(model, config: cfg).path)
            let m: Engine.Model
            do { m = try LocalModel.load(model, config: cfg) } catch {
                // A text-to-image folder the engine cannot run yet still shows its tokenizer and text encoder.
                if !text.isEmpty { print(text.joined(separator: "\n")) }
                throw error
            }
            print(([ModelReport(model: m).text] + text).joined(separator: "\n"))
        }
    }
}

/// Options of the commands that work without a broker.
struct LocalOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default /etc/darkroom/darkroom.toml, else built-in defaults).")
    var config: String?

    func load() throws -> DarkroomConfig {
        do {
            return try DarkroomConfig.load(path: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CLIError(oneLine("\(error)"))
        }
    }
}

/// Loads a model given as a folder or as a name under the config's model_dir.
enum LocalModel {
    /// (name, folder) of `arg`: a path when it names an existing folder or contains "/", else a name under
    /// model_dir; nil means the config's default_model.
    static func locate(_ arg: String?, config: DarkroomConfig) -> (name: String, path: String) {
        guard let arg else { return (config.defaultModel, config.modelPath(config.defaultModel)) }
        var isDir: ObjCBool = false
        if arg.contains("/") || (FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) && isDir.boolValue) {
            let url = URL(fileURLWithPath: arg).standardizedFileURL
            return (url.lastPathComponent, url.path)
        }
        return (arg, config.modelPath(arg))
    }

    /// `precision` nil: the config's `[precision]` for the model, else the files' own.
    /// The config's `[precision]` entry for model `name`.
    static func configured(_ name: String, _ config: DarkroomConfig) -> WeightPrecision? {
        config.precision[name].flatMap(WeightPrecision.init(name:))
    }

    static func load(_ arg: String?, config: DarkroomConfig, precision: WeightPrecision? = nil) throws -> Engine.Model {
        let (name, path) = locate(arg, config: config)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError(arg == nil
                ? "the default model \"\(name)\" is not at \(path); give --model DIR (or set model_dir / default_model in the config)"
                : "no model folder at \(path); give a pipeline folder or a model name under \(config.modelDir)")
        }
        do {
            return try Engine.load(name: name, path: path, precision: precision ?? configured(name, config))
        } catch let e as WorkerError {
            throw CLIError(oneLine("cannot load " + e.message))
        } catch {
            throw CLIError(oneLine("cannot load model \(name) (\(path)): \(error)"))
        }
    }
}

/// Collapses a message onto one line (errors from deep down must not break the one-line rule).
func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
}

/// The text `models inspect` prints.
struct ModelReport {
    let model: Engine.Model

    var text: String {
        guard let p = model.pipeline else {
            let t = model.text
            return ["model \(model.name): \(model.path)",
                    "pipeline: \(t?.family.rawValue ?? "?") (text to image: prompt and negative prompt)",
                    "defaults: \(model.info.defaultWidth)x\(model.info.defaultHeight), \(model.info.defaultSteps) steps, guidance \(model.info.defaultGuidance), sampler \(model.info.defaultSampler)"]
                .joined(separator: "\n")
        }
        let f = p.folder, info = model.info
        var out: [String] = []
        out.append("model \(model.name): \(model.path)")
        out.append("pipeline: \(f.className.isEmpty ? "?" : f.className)" + (f.diffusersVersion.map { " (diffusers \($0))" } ?? ""))
        out.append("components:")
        for (name, entry) in f.components.sorted(by: { $0.key < $1.key }) {
            out.append("  \(pad(name, 12)) \(entry.map { $0.joined(separator: ".") } ?? "none")")
        }

        let t = p.transformerConfig
        out.append("\(f.transformer.name): \(f.transformer.className), \(weights(f.transformer))")
        let sigma = t.resolvedOutChannels == 2 * t.inChannels ? " (learned sigma)" : ""
        out.append("  \(t.numLayers) layers, \(t.numAttentionHeads) heads x \(t.attentionHeadDim) (hidden \(t.innerDim)), patch \(t.patchSize), "
                   + "channels \(t.inChannels) -> \(t.resolvedOutChannels)\(sigma), sample size \(t.sampleSize), "
                   + "\(t.numEmbedsAdaNorm) classes (null class \(t.numEmbedsAdaNorm)), \(t.normType)")
        if let v = p.vaeConfig, let vf = f.vae {
            out.append("vae: \(vf.className), \(weights(vf))")
            out.append("  blocks \(v.blockOutChannels.map(String.init).joined(separator: ",")), \(v.layersPerBlock) layer(s) per block, "
                       + "\(v.normNumGroups) groups, latent channels \(v.latentChannels), scaling factor \(v.scalingFactor)"
                       + (v.shiftFactor.map { ", shift factor \($0)" } ?? "") + ", spatial factor \(v.spatialScale)")
        } else {
            out.append("vae: none (pixel space: the transformer works on RGB)")
        }
        let s = p.schedulerConfig
        out.append("scheduler: \(s.className ?? "? (none)")" + (p.defaultSampler.map { " (sampler \($0.rawValue))" } ?? " (not supported; name a sampler)"))
        let keys = s.values.keys.sorted()
        if !keys.isEmpty {
            out.append("  " + keys.map { "\($0)=\(render(s.values[$0]!))" }.joined(separator: ", "))
        }

        out.append("image: default \(info.defaultWidth)x\(info.defaultHeight), sides multiples of \(info.granularity), "
                   + "latent \(p.isLatent ? "\(info.defaultWidth / p.decoder.scale)x\(info.defaultHeight / p.decoder.scale)" : "= image")")
        out.append("served sizes: " + (info.sizes.isEmpty ? "any multiple of \(info.granularity)" : info.sizes.map(\.description).joined(separator: ", ")))
        out.append("defaults: steps \(info.defaultSteps), guidance \(info.defaultGuidance), sampler \(info.defaultSampler); "
                   + "samplers: \(info.samplers.joined(separator: ", "))")
        let ids = p.id2label.keys.sorted()
        out.append("labels: \(ids.count) named of \(info.numClasses) classes" + (ids.isEmpty ? " (use --class-id N)" : ""))
        for id in ids { out.append("  \(pad(String(id), 5)) \(p.id2label[id]!)") }
        return out.joined(separator: "\n")
    }

    /// "N parameters, X MB (F32)" of a component's safetensors.
    func weights(_ c: ComponentFolder) -> String {
        guard let store = try? c.openWeights() else { return "weights unreadable" }
        return Self.summary(of: store)
    }

    /// "N parameters in T tensors, X MB (BF16)" of a single or sharded safetensors store.
    static func summary(of store: any WeightStore) -> String {
        var infos: [SafeTensorInfo] = []
        if let file = store as? SafeTensorsFile {
            infos = Array(file.tensors.values)
        } else if let sharded = store as? ShardedWeights {
            infos = sharded.shards.flatMap { Array($0.tensors.values) }
        }
        let params = infos.reduce(0) { $0 + $1.count }
        let bytes = infos.reduce(0) { $0 + ($1.end - $1.begin) }
        let dtypes = Set(infos.map(\.dtype.rawValue)).sorted().joined(separator: "/")
        let shards = (store as? ShardedWeights).map { ", \($0.shards.count) shards" } ?? ""
        return "\(count(params)) parameters in \(infos.count) tensors\(shards), \(String(format: "%.1f", Double(bytes) / 1e6)) MB (\(dtypes))"
    }

    static func count(_ n: Int) -> String {
        switch n {
        case 1_000_000_000...: return String(format: "%.2f G", Double(n) / 1e9)
        case 1_000_000...: return String(format: "%.2f M", Double(n) / 1e6)
        case 1_000...: return String(format: "%.1f k", Double(n) / 1e3)
        default: return String(n)
        }
    }

    func render(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(render).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\($0):\(render(o[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
}
