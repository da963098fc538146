// Text-to-image pipelines over a diffusers folder: PixArt-Σ / PixArt-α (T5 + PixArtTransformer2DModel + AutoencoderKL +
// DPM-Solver), Sana (Gemma2 + SanaTransformer2DModel + AutoencoderDC + flow DPM-Solver) and Sana Sprint (the same with
// SCMScheduler and a guidance embedding). Ports of diffusers 0.42.1 pipelines/pixart_alpha/pipeline_pixart_sigma.py
// (`encode_prompt` :263-380, `__call__` :680-905), pipelines/sana/pipeline_sana.py (`_get_gemma_prompt_embeds`
// :222-278, `encode_prompt` :280-400, `__call__` :690-985) and pipelines/sana/pipeline_sana_sprint.py (`__call__`
// :560-860). The registry is model_index.json's `_class_name`.
//
// Batching: each request has its own prompt, negative prompt, guidance and generator; one forward per step holds the
// conditional rows of every request and the unconditional rows of those with guidance > 1. Every model runs its
// linears one batch item at a time, so a request gets the bits it would get alone.
import Core
import Foundation
import Tensor
import Text
import Weights

/// One text-to-image request.
public struct TextRequest: Sendable, Equatable {
    public var prompt: String
    /// Ignored without classifier-free guidance (guidance ≤ 1) and by Sana Sprint.
    public var negativePrompt: String
    public var guidanceScale: Double
    /// `torch.Generator().manual_seed(seed)`: the initial noise, then (Sprint) each step's noise.
    public var seed: Int64

    public init(prompt: String, negativePrompt: String = "", guidanceScale: Double = 4.5, seed: Int64) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.guidanceScale = guidanceScale
        self.seed = seed
    }
}

public final class TextToImagePipeline: Sendable {
    /// The pipeline classes this engine runs, by model_index.json `_class_name`.
    public enum Family: String, Sendable, CaseIterable {
        case pixArtSigma = "PixArtSigmaPipeline"
        case pixArtAlpha = "PixArtAlphaPipeline"
        case sana = "SanaPipeline"
        case sanaSprint = "SanaSprintPipeline"

        /// `max_sequence_length` default of `__call__` (120 for PixArt-α, 300 otherwise).
        public var defaultMaxSequenceLength: Int { self == .pixArtAlpha ? 120 : 300 }
    }

    enum Transformer: Sendable {
        case pixArt(PixArtTransformer2DModel)
        case sana(SanaTransformer2DModel)
    }

    enum Autoencoder: Sendable {
        case kl(AutoencoderKL)
        case dc(AutoencoderDC)

        var latentChannels: Int {
            switch self {
            case .kl(let v): return v.config.latentChannels
            case .dc(let v): return v.config.latentChannels
            }
        }

        var scale: Int {
            switch self {
            case .kl(let v): return v.config.spatialScale
            case .dc(let v): return v.config.spatialScale
            }
        }

        /// `vae.decode(latents / scaling_factor)` (a float32 division, as both pipelines write it).
        func decode(_ z: Tensor) throws -> Tensor {
            switch self {
            case .kl(let v):
                let sf = Float(v.config.scalingFactor)
                return try v.decode(Tensor(shape: z.shape, data: z.data.map { $0 / sf }))
            case .dc(let v):
                return try DCAEDecoder(vae: v).decode(z)
            }
        }
    }

    public let family: Family
    public let folder: PipelineFolder
    /// The precision the weights were converted to at load; nil: as stored.
    public let precision: WeightPrecision?
    /// Caption embeddings already computed (part 1's prompt cache), keyed by this folder's path, text and length.
    public let promptCache: PromptCache?
    let tokenizer: Tokenizer
    let textEncoder: TextEncoder
    let transformer: Transformer
    let vae: Autoencoder
    public let schedulerConfig: SchedulerConfig
    /// How the folder is meant to be called (darkroom.json `call`): defaults for binning, instruction, sequence length.
    public let callDefaults: CallDefaults
    /// Latent → RGB map for progress previews when the latents are not SD's 4 channels (DC-AE): fitted once at
    /// load by least squares from two decoded noise latents (`fitPreviewMap`); nil for 4-channel latents.
    public let previewMap: [[Float]]?

    /// Loads a folder whose `_class_name` is one of `Family`. Any problem (unsupported class, missing tokenizer,
    /// weights that do not fit) is one error naming the component.
    /// `precision` nil: every component's weights as stored; else all converted to it at load.
    public init(folder: PipelineFolder, promptCache: PromptCache? = nil, precision: WeightPrecision? = nil) throws {
        self.precision = precision
        self.promptCache = promptCache
        guard let family = Family(rawValue: folder.className) else {
            throw PipelineError(.unsupportedComponent, "\(folder.className.isEmpty ? "no _class_name" : folder.className) is not a text-to-image pipeline this engine runs (\(Family.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.family = family
        self.folder = folder
        let url = folder.url
        do {
            tokenizer = try Tokenizer(folder: url.appendingPathComponent("tokenizer"))
        } catch {
            throw PipelineError(.badConfig, "tokenizer: \(error)")
        }
        do {
            textEncoder = try TextEncoder(folder: url.appendingPathComponent("text_encoder"), precision: precision)
        } catch {
            throw PipelineError(.badConfig, "text_encoder: \(error)")
        }
        let t = folder.transformer
        func component<T>(_ name: String, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ModelError { throw PipelineError(.badConfig, "\(name): \(e.message)") }
        }
        switch family {
        case .pixArtSigma, .pixArtAlpha:
            guard t.className == "PixArtTransformer2DModel" else {
                throw PipelineError(.unsupportedComponent, "transformer: \(t.className) is not supported by \(family.rawValue) (PixArtTransformer2DModel)")
            }
            let model = try component("transformer") {
                try PixArtTransformer2DModel(config: t.decodeConfig(PixArtTransformer2DModel.Config.self), weights: t.openWeights(precision: precision))
            }
            transformer = .pixArt(model)
        case .sana, .sanaSprint:
            guard t.className == "SanaTransformer2DModel" else {
                throw PipelineError(.unsupportedComponent, "transformer: \(t.className) is not supported by \(family.rawValue) (SanaTransformer2DModel)")
            }
            let model = try component("transformer") {
                try SanaTransformer2DModel(config: t.decodeConfig(SanaTransformer2DModel.Config.self), weights: t.openWeights(precision: precision))
            }
            guard model.config.guidanceEmbeds == (family == .sanaSprint) else {
                throw PipelineError(.badConfig, "transformer: guidance_embeds \(model.config.guidanceEmbeds) does not fit \(family.rawValue)")
            }
            transformer = .sana(model)
        }
        guard let v = folder.vae else { throw PipelineError(.badModelIndex, "\(family.rawValue) needs a vae/ component") }
        switch v.className {
        case "AutoencoderKL":
            vae = .kl(try component("vae") { try AutoencoderKL(config: v.decodeConfig(AutoencoderKL.Config.self), weights: v.openWeights(precision: precision),
                                                             decoderOnly: precision != nil) })
        case "AutoencoderDC":
            vae = .dc(try component("vae") { try AutoencoderDC(config: v.decodeConfig(AutoencoderDC.Config.self), weights: v.openWeights(precision: precision),
                                                             decoderOnly: precision != nil) })
        default:
            throw PipelineError(.unsupportedComponent, "vae: \(v.className) is not supported (AutoencoderKL, AutoencoderDC)")
        }
        schedulerConfig = folder.scheduler
        callDefaults = try CallDefaults.read(folder: folder.url)
        previewMap = vae.latentChannels == 4 ? nil : try Self.fitPreviewMap(vae)
        // diffusers' pipelines step whatever scheduler the folder ships: Sprint needs SCM; the others run
        // DPM-Solver (as released) or flow-matching Euler (models/tiny-scenes).
        let expected = family == .sanaSprint ? ["SCMScheduler"] : [SamplerName.dpmpp2m.className, SamplerName.flowEuler.className]
        guard let name = folder.scheduler.className, expected.contains(name) else {
            throw PipelineError(.unsupportedComponent, "scheduler: \(folder.scheduler.className ?? "none") is not supported by \(family.rawValue) (\(expected.joined(separator: ", ")))")
        }
        guard textEncoder.hiddenSize == captionChannels else {
            throw PipelineError(.badConfig, "text_encoder hidden size \(textEncoder.hiddenSize) ≠ transformer caption_channels \(captionChannels)")
        }
        guard latentChannels == inChannels else {
            throw PipelineError(.badConfig, "vae latent channels \(latentChannels) ≠ transformer in_channels \(inChannels)")
        }
    }

    /// A `(C + 1) × 3` map (last row: bias) from a latent pixel to the mean colour of the image block it decodes to:
    /// ridge least squares over two 8×8 noise latents (seeds 0, 1) and their decoded images pooled to latent size.
    /// Costs one small decode at load; a preview then costs C·3 multiply-adds per latent pixel.
    static func fitPreviewMap(_ vae: Autoencoder) throws -> [[Float]] {
        let c = vae.latentChannels, side = 8, s = vae.scale, plane = side * side, n = c + 1
        var ata = [Double](repeating: 0, count: n * n), atb = [Double](repeating: 0, count: n * 3)
        for seed in [Int64(0), 1] {
            var g = TorchGenerator(seed: seed)
            let z = g.randn(count: c * plane)
            let image = try vae.decode(Tensor(shape: [1, c, side, side], data: z)).data   // [3, 8s, 8s]
            for p in 0..<plane {
                let y = p / side, x = p % side
                var features = (0..<c).map { Double(z[$0 * plane + p]) }
                features.append(1)
                var target = [Double](repeating: 0, count: 3)
                for o in 0..<3 {
                    for dy in 0..<s { for dx in 0..<s { target[o] += Double(image[(o * side * s + y * s + dy) * side * s + x * s + dx]) } }
                    target[o] /= Double(s * s)
                }
                for i in 0..<n {
                    for j in 0..<n { ata[i * n + j] += features[i] * features[j] }
                    for o in 0..<3 { atb[i * 3 + o] += features[i] * target[o] }
                }
            }
        }
        for i in 0..<n { ata[i * n + i] += 1e-3 }
        // Gaussian elimination with partial pivoting on [AᵀA | AᵀB]
        for col in 0..<n {
            let pivot = (col..<n).max { abs(ata[$0 * n + col]) < abs(ata[$1 * n + col]) }!
            if pivot != col {
                for j in 0..<n { ata.swapAt(col * n + j, pivot * n + j) }
                for o in 0..<3 { atb.swapAt(col * 3 + o, pivot * 3 + o) }
            }
            let d = ata[col * n + col]
            guard abs(d) > 1e-12 else { continue }
            for r in 0..<n where r != col {
                let f = ata[r * n + col] / d
                if f == 0 { continue }
                for j in 0..<n { ata[r * n + j] -= f * ata[col * n + j] }
                for o in 0..<3 { atb[r * 3 + o] -= f * atb[col * 3 + o] }
            }
        }
        return (0..<n).map { i in (0..<3).map { o in Float(abs(ata[i * n + i]) > 1e-12 ? atb[i * 3 + o] / ata[i * n + i] : 0) } }
    }

    public convenience init(url: URL, promptCache: PromptCache? = nil, precision: WeightPrecision? = nil) throws {
        try self.init(folder: PipelineFolder(url: url), promptCache: promptCache, precision: precision)
    }

    var inChannels: Int {
        switch transformer {
        case .pixArt(let m): return m.inChannels
        case .sana(let m): return m.inChannels
        }
    }
    var outChannels: Int {
        switch transformer {
        case .pixArt(let m): return m.outChannels
        case .sana(let m): return m.outChannels
        }
    }
    var captionChannels: Int {
        switch transformer {
        case .pixArt(let m): return m.captionChannels
        case .sana(let m): return m.captionChannels
        }
    }
    var patchSize: Int {
        switch transformer {
        case .pixArt(let m): return m.patchSize
        case .sana(let m): return m.patchSize
        }
    }
    var latentChannels: Int { vae.latentChannels }
    /// `vae_scale_factor`: image pixels per latent pixel.
    public var vaeScale: Int { vae.scale }

    /// Image sides must be multiples of this without binning (VAE scale × patch; Sana and Sprint: at least 32).
    public var sizeMultiple: Int {
        let m = vaeScale * patchSize
        return (family == .sana || family == .sanaSprint) ? max(32, m) : m
    }

    /// `__call__`'s default size: transformer sample_size × VAE scale (e.g. 1024 for Sana_1600M_1024px).
    public var defaultImageSize: Int {
        switch transformer {
        case .pixArt(let m): return m.config.sampleSize * vaeScale
        case .sana(let m): return m.config.sampleSize * vaeScale
        }
    }

    /// A conservative estimate of the bytes a batch of `rows` transformer rows at `width × height` needs beyond the
    /// weights: token activations (and the attention scores of PixArt's softmax self-attention) plus the decoder's
    /// widest feature maps for the images (half the rows with guidance, at most).
    public func activationBytes(width: Int, height: Int, rows: Int) -> UInt64 {
        let tokens = (height / vaeScale / patchSize) * (width / vaeScale / patchSize)
        let e: Int, scores: Int
        switch transformer {
        case .pixArt(let m): e = m.config.innerDim; scores = m.config.numAttentionHeads * tokens * tokens
        case .sana(let m): e = m.config.innerDim; scores = 0
        }
        let widest: Int
        switch vae {
        case .kl(let v): widest = v.config.blockOutChannels.first ?? 128
        case .dc(let v): widest = v.config.decoderBlockOutChannels.first ?? 128
        }
        let perRow = tokens * e * 24 + scores + captionChannels * family.defaultMaxSequenceLength * 4
        return UInt64(4 * (rows * perRow + rows * widest * width * height * 6))
    }

    // MARK: prompts

    /// `_text_preprocessing(clean_caption=False)`: lower-cased, surrounding white space removed.
    static func preprocess(_ text: String) -> String { text.lowercased().trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Caption embeddings and mask of some texts, `tokenizer(texts, padding="max_length", max_length, truncation=True)`
    /// then the encoder's last hidden state. Rows are `[L, H]` each.
    /// Texts found in `promptCache` are not encoded again; the others go through the encoder as one batch (a row
    /// does not depend on its batch-mates, so cached and fresh rows agree).
    func encode(_ texts: [String], maxLength: Int) throws -> (embeddings: [[Float]], masks: [[Float]]) {
        let keys = texts.map { PromptCache.Key(model: folder.url.path, prompt: $0, maxLength: maxLength) }
        var found = keys.map { promptCache?.lookup($0) }
        let missing = found.indices.filter { found[$0] == nil }
        if !missing.isEmpty {
            let batch = try tokenizer.encode(missing.map { texts[$0] }, maxLength: maxLength, padding: .maxLength,
                                             truncation: true, side: .right)
            let hidden = try textEncoder.encode(batch)                 // [B, L, H]
            let row = batch.length * textEncoder.hiddenSize
            for (j, i) in missing.enumerated() {
                let entry = PromptCache.Entry(hidden: Tensor(shape: [batch.length, textEncoder.hiddenSize],
                                                             data: Array(hidden.data[(j * row)..<((j + 1) * row)])),
                                              mask: batch.mask[j])
                promptCache?.insert(keys[i], entry)
                found[i] = entry
            }
        }
        return (found.map { $0!.hidden.data }, found.map { $0!.mask.map(Float.init) })
    }

    /// The positive caption of each request: PixArt `encode_prompt` (max_sequence_length tokens), Sana
    /// `_get_gemma_prompt_embeds` with the complex human instruction prefixed, then `select_index = [0] + the last
    /// max_sequence_length − 1` positions.
    func positiveCaptions(_ prompts: [String], maxSequenceLength msl: Int, instruction: [String]?) throws -> (embeddings: [[Float]], masks: [[Float]]) {
        let texts = prompts.map(Self.preprocess)
        switch family {
        case .pixArtSigma, .pixArtAlpha:
            return try encode(texts, maxLength: msl)
        case .sana, .sanaSprint:
            guard let instruction, !instruction.isEmpty else { return try select(encode(texts, maxLength: msl), msl) }
            let chi = instruction.joined(separator: "\n")
            let chiTokens = tokenizer.encode(chi).count
            return try select(encode(texts.map { chi + $0 }, maxLength: chiTokens + msl - 2), msl)
        }
    }

    /// `prompt_embeds[:, [0] + list(range(-msl + 1, 0))]` (pipeline_sana.py encode_prompt).
    func select(_ e: (embeddings: [[Float]], masks: [[Float]]), _ msl: Int) -> (embeddings: [[Float]], masks: [[Float]]) {
        let h = textEncoder.hiddenSize
        let embeddings = zip(e.embeddings, e.masks).map { emb, mask -> [Float] in
            let l = mask.count
            let rows = [0] + Array((l - msl + 1)..<l)
            return rows.flatMap { emb[($0 * h)..<(($0 + 1) * h)] }
        }
        let masks = e.masks.map { mask -> [Float] in
            let l = mask.count
            return ([0] + Array((l - msl + 1)..<l)).map { mask[$0] }
        }
        return (embeddings, masks)
    }

    // MARK: generation

    /// What `__call__` does for each request at `height × width`. With `binning` (diffusers' `use_resolution_binning`,
    /// its default) the image is generated at the bin closest in aspect ratio (`resolutionBins`) and resized back
    /// (bilinear, centre crop: `resize_and_crop_tensor`); without it the size must be a multiple of the VAE scale ×
    /// patch size (Sana and Sprint: of 32).
    /// - binning: nil = the folder's darkroom.json `call` default, else on (diffusers' default).
    /// - maxSequenceLength: nil = the folder's default, else the family's. complexHumanInstruction: nil = the folder's
    ///   default, else Sana's; [] = none.
    public func generate(_ requests: [TextRequest], steps: Int, height: Int, width: Int, binning requested: Bool? = nil,
                         maxSequenceLength: Int? = nil, complexHumanInstruction: [String]? = nil,
                         intermediateTimestep: Double? = 1.3, maxTimestep: Double = 1.57080,
                         promptEmbeds: (embeddings: [[Float]], masks: [[Float]])? = nil,
                         callback: ((SamplerProgress) -> Set<Int>)? = nil) throws -> [SampleOutcome] {
        guard !requests.isEmpty else { return [] }
        if let given = promptEmbeds {   // `prompt_embeds` / `prompt_attention_mask`: [L·H] and [L] per request
            let l = given.masks.first?.count ?? 0, hidden = textEncoder.hiddenSize
            guard given.embeddings.count == requests.count, given.masks.count == requests.count, l > 0,
                  given.masks.allSatisfy({ $0.count == l }), given.embeddings.allSatisfy({ $0.count == l * hidden }) else {
                throw PipelineError(.badRequest, "prompt embeddings must be one [L, \(hidden)] row and one [L] mask per request")
            }
        }
        let binning = requested ?? callDefaults.binning ?? true
        guard height > 0, width > 0 else { throw PipelineError(.badRequest, "image size \(width)×\(height) must be positive") }
        let (genHeight, genWidth) = binning ? ResolutionBins.classify(height: height, width: width, bins: try resolutionBins()) : (height, width)
        let s = vaeScale, multiple = sizeMultiple
        guard genHeight % multiple == 0, genWidth % multiple == 0 else {
            throw PipelineError(.badRequest, "image size \(genWidth)×\(genHeight) must be a multiple of \(multiple)")
        }
        guard steps >= 1 else { throw PipelineError(.badRequest, "steps must be at least 1") }
        let msl = maxSequenceLength ?? callDefaults.maxSequenceLength ?? family.defaultMaxSequenceLength
        guard msl >= 2 else { throw PipelineError(.badRequest, "max_sequence_length must be at least 2") }
        let h = genHeight / s, w = genWidth / s, c = inChannels, count = c * h * w

        // 1. Captions: positives for every request, negatives for those with guidance (not Sprint)
        let instruction = complexHumanInstruction ?? callDefaults.complexHumanInstruction ?? Self.complexHumanInstruction
        let pos = try promptEmbeds ?? positiveCaptions(requests.map(\.prompt), maxSequenceLength: msl, instruction: instruction)
        let guided = family == .sanaSprint ? [] : requests.indices.filter { requests[$0].guidanceScale > 1 }
        let neg = guided.isEmpty ? (embeddings: [[Float]](), masks: [[Float]]())
            : try encode(guided.map { Self.preprocess(requests[$0].negativePrompt) }, maxLength: pos.masks[0].count)
        var captions = Captions(length: pos.masks[0].count, width: textEncoder.hiddenSize, positive: pos, negative: [:])
        for (j, r) in guided.enumerated() { captions.negative[r] = (neg.embeddings[j], neg.masks[j]) }

        // 2. Initial noise: randn((1, C, h, w), generator=gen(seed)) per request
        var generators = requests.map { TorchGenerator(seed: $0.seed) }
        var x = generators.indices.map { generators[$0].randn(count: count) }

        // 3. Denoising; the callback's drops leave the batch after the step
        var droppedAt: [Int: Int] = [:]
        let report = { (step: Int, steps: Int, t: Float, latents: [[Float]], live: [Int]) -> Set<Int> in
            guard let callback else { return [] }
            let drop = callback(SamplerProgress(step: step, steps: steps, timestep: t, active: live,
                                                latents: Dictionary(uniqueKeysWithValues: live.map { ($0, latents[$0]) }),
                                                channels: c, height: h, width: w, isLatent: true, rgbMap: self.previewMap))
            for r in live where drop.contains(r) { droppedAt[r] = step }
            return drop
        }
        let (final, live) = family == .sanaSprint
            ? try sprintLoop(&x, &generators, requests: requests, steps: steps, captions: captions, h: h, w: w,
                             intermediate: steps == 2 ? intermediateTimestep : nil, maxTimestep: maxTimestep, report: report)
            : try dpmLoop(&x, requests: requests, steps: steps, captions: captions, h: h, w: w, report: report)

        // 4. Decode latents / scaling_factor, resize back from the bin, (x / 2 + 0.5).clamp(0, 1)
        var outcomes = requests.indices.map { SampleOutcome.cancelled(afterStep: droppedAt[$0] ?? 0) }
        guard !live.isEmpty else { return outcomes }
        // One image at a time: the VAEs run some linears over the whole batch in one sgemm (OpenBLAS's bits can
        // depend on the row count), so decoding each alone keeps every image equal to its solo run.
        MemoryTrace.mark("text-to-image: denoised, before the decode")
        for r in live {
            var decoded = try decode(Tensor(shape: [1, c, h, w], data: final[r]))
            MemoryTrace.mark("text-to-image: decoded")
            if (genHeight, genWidth) != (height, width) {
                decoded = Self.resizeAndCrop(decoded, height: height, width: width)
            }
            let img = ImageConversion.unitRange(decoded.data)
            outcomes[r] = .image(GeneratedImage(rgb: ImageConversion.rgb8(chw: img, height: height, width: width), image: img,
                                                latents: final[r], initialNoise: []))
        }
        return outcomes
    }

    /// Each request's caption rows `[L, H]` and masks `[L]`: positive, and negative for those with guidance.
    struct Captions {
        let length: Int, width: Int
        let positive: (embeddings: [[Float]], masks: [[Float]])
        var negative: [Int: ([Float], [Float])]

        /// The caption tensor and mask of a forward's rows: `cond` positives, then `uncond` negatives.
        // -> caption [rows, L, H], mask [rows·L]
        func rows(cond: [Int], uncond: [Int]) -> (Tensor, [Float]) {
            var data = [Float](), mask = [Float]()
            for r in cond { data += positive.embeddings[r]; mask += positive.masks[r] }
            for r in uncond { data += negative[r]!.0; mask += negative[r]!.1 }
            return (Tensor(shape: [cond.count + uncond.count, length, width], data: data), mask)
        }
    }

    /// The bins `__call__` picks by the transformer's sample_size (pipeline_pixart_sigma.py:744-755,
    /// pipeline_pixart_alpha.py:802-811, pipeline_sana.py:809-820, pipeline_sana_sprint.py:686-690).
    public func resolutionBins() throws -> [ResolutionBin] {
        let size: Int
        switch transformer {
        case .pixArt(let m): size = m.config.sampleSize
        case .sana(let m): size = m.config.sampleSize
        }
        let table: [Family: [Int: [ResolutionBin]]] = [
            .pixArtSigma: [256: ResolutionBins.bins2048, 128: ResolutionBins.bins1024, 64: ResolutionBins.bins512, 32: ResolutionBins.bins256],
            .pixArtAlpha: [128: ResolutionBins.bins1024, 64: ResolutionBins.bins512, 32: ResolutionBins.bins256],
            .sana: [128: ResolutionBins.bins4096, 64: ResolutionBins.bins2048, 32: ResolutionBins.bins1024, 16: ResolutionBins.bins512],
            .sanaSprint: [32: ResolutionBins.bins1024],
        ]
        guard let bins = table[family]?[size] else {
            throw PipelineError(.badRequest, "\(family.rawValue) has no resolution bins for transformer sample_size \(size); ask for binning off")
        }
        return bins
    }

    /// `resize_and_crop_tensor` (image_processor.py:1441-1475): scale by the larger of the two ratios (sizes
    /// truncated), bilinear, then the centre crop.
    // x: [B, 3, H, W] -> [B, 3, height, width]
    static func resizeAndCrop(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let ratio = max(Double(height) / Double(h), Double(width) / Double(w))
        let rw = Int(Double(w) * ratio), rh = Int(Double(h) * ratio)
        var resized = [Float](repeating: 0, count: b * c * rh * rw)
        x.data.withUnsafeBufferPointer { resizeBilinear(&resized, $0.baseAddress!, planes: b * c, height: h, width: w, outHeight: rh, outWidth: rw) }
        let x0 = (rw - width) / 2, y0 = (rh - height) / 2
        var out = [Float]()
        out.reserveCapacity(b * c * height * width)
        for p in 0..<(b * c) {
            for yy in 0..<height {
                let row = (p * rh + y0 + yy) * rw + x0
                out += resized[row..<(row + width)]
            }
        }
        return Tensor(shape: [b, c, height, width], data: out)
    }

    /// The PixArt / Sana loop: CFG-batched transformer, `uncond + g·(text − uncond)`, the learned-sigma split,
    /// `scheduler.step` (the folder's DPM-Solver or flow Euler) per request.
    /// `report(step, steps, t, latents, live)` returns the requests to drop. Returns the samples and who is left.
    func dpmLoop(_ x: inout [[Float]], requests: [TextRequest], steps: Int, captions: Captions,
                 h: Int, w: Int, report: (Int, Int, Float, [[Float]], [Int]) -> Set<Int>) throws -> ([[Float]], [Int]) {
        var live = Array(requests.indices)
        let sampler: SamplerName = schedulerConfig.className == SamplerName.flowEuler.className ? .flowEuler : .dpmpp2m
        let base = try Schedulers.make(sampler, config: schedulerConfig).tables(steps: steps)
        var schedulers = try requests.map { _ in try Schedulers.make(tables: base) }
        let c = inChannels, co = outChannels, plane = h * w, count = c * plane
        let timestepScale: Float
        if case .sana(let m) = transformer { timestepScale = Float(m.config.timestepScale) } else { timestepScale = 1 }
        // the caption rows change only when a request leaves: built once, rebuilt after a drop
        var cfg = live.filter { captions.negative[$0] != nil }
        var (caption, mask) = captions.rows(cond: live, uncond: cfg)
        for (k, t) in base.timesteps.enumerated() where !live.isEmpty {
            let rows = live.count + cfg.count
            var input = [Float]()
            input.reserveCapacity(rows * count)
            for r in live + cfg { input += x[r] }
            let out = try forward(Tensor(shape: [rows, c, h, w], data: input),
                                  timesteps: Array(repeating: t * timestepScale, count: rows), caption: caption, mask: mask,
                                  guidance: nil, height: h, width: w)
            let outRow = co * plane
            for (i, r) in live.enumerated() {
                var mo = Array(out.data[(i * outRow)..<(i * outRow + count)])   // learned sigma: first C channels
                if let j = cfg.firstIndex(of: r) {
                    let uncond = (live.count + j) * outRow, g = Float(requests[r].guidanceScale)
                    for q in 0..<count {
                        let u = out.data[uncond + q]
                        mo[q] = u + g * (out.data[i * outRow + q] - u)
                    }
                }
                x[r] = try schedulers[r].step(modelOutput: mo, timestep: t, sample: x[r])
            }
            let drop = report(k + 1, base.steps, t, x, live)
            if live.contains(where: drop.contains) {
                live.removeAll { drop.contains($0) }
                cfg = live.filter { captions.negative[$0] != nil }
                (caption, mask) = captions.rows(cond: live, uncond: cfg)
            }
        }
        return (x, live)
    }

    /// The Sana Sprint loop (pipeline_sana_sprint.py:760-845): latents·σ_d, TrigFlow's input scaling, the guidance
    /// embedding, the SCM step with the request's own noise; the image is decoded from `denoised / σ_d`.
    func sprintLoop(_ x: inout [[Float]], _ generators: inout [TorchGenerator], requests: [TextRequest],
                    steps: Int, captions: Captions, h: Int, w: Int, intermediate: Double?, maxTimestep: Double,
                    report: (Int, Int, Float, [[Float]], [Int]) -> Set<Int>) throws -> ([[Float]], [Int]) {
        var live = Array(requests.indices)
        guard case .sana(let model) = transformer else { preconditionFailure("Sprint runs a Sana transformer") }
        var scheduler = try SCMScheduler(config: schedulerConfig)
        try scheduler.setTimesteps(steps, maxTimesteps: maxTimestep, intermediateTimesteps: intermediate)
        let sd = Float(scheduler.params.sigmaData), count = inChannels * h * w
        for r in x.indices { x[r] = x[r].map { $0 * sd } }
        var schedulers = requests.map { _ in scheduler }
        var denoised = x
        var (caption, mask) = captions.rows(cond: live, uncond: [])   // rebuilt only after a drop
        for (k, t) in scheduler.timesteps.dropLast().enumerated() where !live.isEmpty {
            let st = Foundation.sin(t) / (Foundation.cos(t) + Foundation.sin(t))   // scm_timestep
            let norm = (st * st + (1 - st) * (1 - st)).squareRoot()
            var input = [Float]()
            input.reserveCapacity(live.count * count)
            for r in live { input += x[r].map { ($0 / sd) * norm } }
            let guidance = live.map { Float(requests[$0].guidanceScale) * Float(model.config.guidanceEmbedsScale) }
            let out = try forward(Tensor(shape: [live.count, inChannels, h, w], data: input),
                                  timesteps: Array(repeating: st, count: live.count), caption: caption, mask: mask,
                                  guidance: guidance, height: h, width: w)
            let a = 1 - 2 * st, b = 1 - 2 * st + 2 * st * st
            for (i, r) in live.enumerated() {
                let lmi = input[(i * count)..<((i + 1) * count)], f = out.data[(i * count)..<((i + 1) * count)]
                let pred = zip(lmi, f).map { ((a * $0 + b * $1) / norm) * sd }
                let step = try schedulers[r].step(modelOutput: pred, timestep: t, sample: x[r], noise: generators[r].randn(count: count))
                x[r] = step.prevSample
                denoised[r] = step.denoised
            }
            let drop = report(k + 1, steps, t, x, live)
            if live.contains(where: drop.contains) {
                live.removeAll { drop.contains($0) }
                (caption, mask) = captions.rows(cond: live, uncond: [])
            }
        }
        return (denoised.map { $0.map { $0 / sd } }, live)
    }

    func forward(_ x: Tensor, timesteps: [Float], caption: Tensor, mask: [Float], guidance: [Float]?, height: Int, width: Int) throws -> Tensor {
        switch transformer {
        case .pixArt(let m):
            var resolution: [Float]? = nil, aspect: [Float]? = nil
            if m.config.resolvedAdditionalConditions {   // PixArt-α: the image size and aspect ratio per row
                let H = height * vaeScale, W = width * vaeScale
                resolution = (0..<x.shape[0]).flatMap { _ in [Float(H), Float(W)] }
                aspect = Array(repeating: Float(Double(H) / Double(W)), count: x.shape[0])
            }
            return try m.forward(x, timesteps: timesteps, caption: caption, captionMask: mask, resolution: resolution, aspectRatio: aspect)
        case .sana(let m):
            return try m.forward(x, timesteps: timesteps, caption: caption, captionMask: mask, guidance: guidance)
        }
    }

    /// `vae.decode(latents / scaling_factor)`.
    func decode(_ z: Tensor) throws -> Tensor { try vae.decode(z) }

    /// Sana's default `complex_human_instruction` (pipeline_sana.py `__call__`; the same in Sprint).
    public static let complexHumanInstruction = [
        "Given a user prompt, generate an 'Enhanced prompt' that provides detailed visual descriptions suitable for image generation. Evaluate the level of detail in the user prompt:",
        "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial relationships to create vivid and concrete scenes.",
        "- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.",
        "Here are examples of how to transform or refine prompts:",
        "- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat curled up in a round shape, sleeping peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.",
        "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering glass skyscrapers.",
        "Please generate only the enhanced description for the prompt below and avoid including any additional commentary or evaluations:",
        "User Prompt: ",
    ]
}
