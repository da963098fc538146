import Core
import Config
import Diffusion
import Foundation
import Jobs
import Tensor
import Text
import Weights

/// The models this worker serves, loaded once, and what the contract needs to know of them:
/// the catalog (labels, sizes, defaults, samplers) and a memory estimate per job.
public final class Engine: Sendable {
    public struct Model: Sendable {
        public let name: String
        public let path: String
        /// Class-conditional models (DiTPipeline); nil for text models.
        public let pipeline: DiffusionPipeline?
        /// Text-to-image models (PixArt-α/Σ, Sana, Sana Sprint); nil for class-conditional ones.
        public let text: TextToImagePipeline?
        public let info: ModelInfo
        /// Bytes of weights on disk (mapped or converted into memory).
        public let weightBytes: UInt64
        /// FNV-1a of scheduler/scheduler_config.json: part of the schedule cache key.
        public let schedulerFingerprint: String
    }

    public let models: [String: Model]
    public let catalog: Catalog
    /// Caption embeddings of recent prompts, shared by the text models (`text.cache_mb`).
    public let promptCache: PromptCache

    /// Loads every configured model; `progress` is called before each (systemd EXTEND_TIMEOUT).
    public init(config: DarkroomConfig, progress: (String) -> Void = { _ in }) throws {
        // worker.threads: OpenBLAS's thread count for every sgemm of this process (0 keeps OpenBLAS's own choice:
        // OPENBLAS_NUM_THREADS or one per core). The worker runs one engine thread, so process-wide is per engine.
        if config.worker.threads > 0 { setBLASThreadCount(config.worker.threads) }
        let promptCache = PromptCache(megabytes: config.text.cacheMB)
        self.promptCache = promptCache
        var models: [String: Model] = [:]
        for name in config.models {
            let path = config.modelPath(name)
            progress("loading model \(name) from \(path)")
            models[name] = try Self.load(name: name, path: path, promptCache: promptCache,
                                         precision: config.precision[name].flatMap(WeightPrecision.init(name:)))
        }
        self.models = models
        self.catalog = Catalog(models: config.models.compactMap { models[$0]?.info }, defaultModel: config.defaultModel,
                               sizeClasses: config.contractClasses)
    }

    /// One model folder, with the serving hints of its optional `darkroom.json`; `precision` nil keeps the
    /// weights as stored, else converts them at load (config `[precision]`).
    public static func load(name: String, path: String, promptCache: PromptCache? = nil,
                            precision: WeightPrecision? = nil) throws -> Model {
        let schedulerJSON = FileManager.default.contents(atPath: path + "/scheduler/scheduler_config.json") ?? Data()
        if let folder = try? PipelineFolder(path: path), TextToImagePipeline.Family(rawValue: folder.className) != nil {
            let text: TextToImagePipeline
            do {
                text = try TextToImagePipeline(folder: folder, promptCache: promptCache, precision: precision)
            } catch {
                throw WorkerError(.engine, "model \(name) (\(path)): \(error)")
            }
            return Model(name: name, path: path, pipeline: nil, text: text, info: textInfo(name: name, text),
                         weightBytes: Self.weightBytes(path), schedulerFingerprint: FNV1a.hex(schedulerJSON))
        }
        let pipeline: DiffusionPipeline
        do {
            pipeline = try DiffusionPipeline.load(path: path, precision: precision)
        } catch {
            throw WorkerError(.engine, "model \(name) (\(path)): \(error)")
        }
        let hints = ServingHints.read(folder: path)
        let flow = pipeline.schedulerConfig.className == "FlowMatchEulerDiscreteScheduler"
        let samplers: [String] = flow ? ["flow_euler"] : ["ddim", "dpmpp_2m", "euler"]
        let granularity = pipeline.decoder.scale * pipeline.denoiser.patchSize
        let side = pipeline.defaultImageSize
        let labels = (0..<pipeline.classCount).map { pipeline.id2label[$0] ?? "class \($0)" }
        let info = ModelInfo(
            name: name, kind: .classConditional, labels: labels, numClasses: pipeline.classCount,
            granularity: granularity,
            defaultWidth: hints.defaultWidth ?? side, defaultHeight: hints.defaultHeight ?? side,
            defaultSteps: hints.defaultSteps ?? (flow ? 28 : 50),
            defaultGuidance: hints.defaultGuidance ?? 4.0,
            defaultSampler: hints.defaultSampler ?? pipeline.defaultSampler?.rawValue ?? samplers[0],
            samplers: samplers, sizes: hints.sizes.map { ImageSize(width: $0[0], height: $0[1]) })
        return Model(name: name, path: path, pipeline: pipeline, text: nil, info: info, weightBytes: Self.weightBytes(path),
                     schedulerFingerprint: FNV1a.hex(schedulerJSON))
    }

    /// What the contract knows of a text model: free-text prompts, sizes in multiples of the pipeline's granularity,
    /// the pipelines' defaults (20 steps, guidance 4.5; Sprint 2 steps) and its one sampler (its folder's scheduler).
    public static func textInfo(name: String, _ pipe: TextToImagePipeline) -> ModelInfo {
        let sprint = pipe.family == .sanaSprint
        let flow = pipe.schedulerConfig.className == SamplerName.flowEuler.className
        let sampler = sprint ? "scm" : flow ? SamplerName.flowEuler.rawValue : SamplerName.dpmpp2m.rawValue
        let side = pipe.defaultImageSize
        var info = ModelInfo(name: name, kind: .text, granularity: pipe.sizeMultiple, defaultWidth: side, defaultHeight: side,
                             defaultSteps: sprint ? 2 : 20, defaultGuidance: 4.5, defaultSampler: sampler, samplers: [sampler])
        info.defaultBinning = pipe.callDefaults.binning ?? true
        return info
    }

    /// A conservative estimate of the memory a batch of `rows` denoiser rows of `width` x `height`
    /// needs on top of the weights: transformer activations (attention scores included) and the
    /// decoder's largest feature maps.
    public func estimateBytes(model name: String, width: Int, height: Int, rows: Int) -> UInt64 {
        guard let m = models[name] else { return 0 }
        if let text = m.text { return m.weightBytes + text.activationBytes(width: width, height: height, rows: rows) }
        guard let pipeline = m.pipeline else { return m.weightBytes }
        let t = pipeline.transformerConfig
        let s = pipeline.decoder.scale
        let tokens = (height / s / t.patchSize) * (width / s / t.patchSize)
        let e = t.innerDim
        let perRow = tokens * e * 14 + t.numAttentionHeads * tokens * tokens + tokens * t.patchSize * t.patchSize * 8
        var decode = 0
        if let v = pipeline.vaeConfig {
            let widest = v.blockOutChannels.first ?? 128
            decode = widest * width * height * 6 + (height / s) * (width / s) * (height / s) * (width / s)
        }
        let images = (rows + 1) / 2
        return m.weightBytes + UInt64(4 * (rows * perRow + images * decode))
    }

    static func weightBytes(_ path: String) -> UInt64 {
        var total: UInt64 = 0
        guard let e = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let f = e.nextObject() as? String {
            guard f.hasSuffix(".safetensors") else { continue }
            total += (try? FileManager.default.attributesOfItem(atPath: path + "/" + f)[.size] as? UInt64) ?? 0
        }
        return total
    }
}

/// Serving hints a model folder may carry in `darkroom.json` (the diffusers files have no
/// place for them): the sizes it was trained for (`sizes: [[W, H], ...]`) and its defaults
/// (`default_size`, `default_steps`, `default_guidance`, `default_sampler`). Other keys are ignored.
struct ServingHints: Decodable {
    var sizes: [[Int]] = []
    var defaultWidth: Int?
    var defaultHeight: Int?
    var defaultSteps: Int?
    var defaultGuidance: Double?
    var defaultSampler: String?

    enum CodingKeys: String, CodingKey {
        case sizes, defaultSize = "default_size", defaultWidth = "default_width", defaultHeight = "default_height"
        case defaultSteps = "default_steps"
        case defaultGuidance = "default_guidance", defaultSampler = "default_sampler"
    }

    init() {}

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sizes = (try c.decodeIfPresent([[Int]].self, forKey: .sizes) ?? []).filter { $0.count == 2 }
        // `default_size: [W, H]`, or `default_width` / `default_height`.
        let size = try c.decodeIfPresent([Int].self, forKey: .defaultSize) ?? []
        defaultWidth = try c.decodeIfPresent(Int.self, forKey: .defaultWidth) ?? (size.count == 2 ? size[0] : nil)
        defaultHeight = try c.decodeIfPresent(Int.self, forKey: .defaultHeight) ?? (size.count == 2 ? size[1] : nil)
        defaultSteps = try c.decodeIfPresent(Int.self, forKey: .defaultSteps)
        defaultGuidance = try c.decodeIfPresent(Double.self, forKey: .defaultGuidance)
        defaultSampler = try c.decodeIfPresent(String.self, forKey: .defaultSampler)
    }

    static func read(folder: String) -> ServingHints {
        guard let data = FileManager.default.contents(atPath: folder + "/darkroom.json") else { return ServingHints() }
        return (try? JSONDecoder().decode(ServingHints.self, from: data)) ?? ServingHints()
    }
}
