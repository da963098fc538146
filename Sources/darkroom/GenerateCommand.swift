import ArgumentParser
import Core
import Config
import Diffusion
import Foundation
import Jobs
import Weights
import Worker

extension WeightPrecision: ExpressibleByArgument {}

/// `darkroom generate`: runs the engine in this process, no broker. The settings are checked and
/// defaulted by the same contract rules a worker applies to a job (`JobRequest.resolve`), and the PNG
/// carries the same `parameters` text (`ImageEvent` / `Job.parametersText`), so a local image and a
/// worker's image of the same settings are byte-identical in pixels and alike in metadata.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images locally with the engine (no broker): a class-conditional model, a seed, a PNG.",
        discussion: """
            Unset settings take the model's defaults (its darkroom.json, else the pipeline's). Image i of \
            --count N uses seed S + i, exactly as a worker does; with N > 1 the files are out-0.png, out-1.png, ...
            """)

    @OptionGroup var local: LocalOptions
    @Option(help: "A pipeline folder, or a model name under model_dir (default: default_model).") var model: String?
    @OptionGroup var options: JobOptions
    @Option(name: .customLong("seeds-dir"), help: "Seed store folder (default: the config's seeds_dir).") var seedsDir: String?
    @Option(name: .shortAndLong, help: "Output PNG path.") var output = "out.png"
    @Option(help: "Hold the weights as bf16, fp16 or fp32, converted at load (default: the config's [precision] for the model, else as the files store them).")
    var precision: WeightPrecision?

    func run() async throws {
        let cfg = try local.load()
        if let (name, path) = Self.textModel(self.model, config: cfg) {
            try generateText(name: name, path: path, config: cfg)
            return
        }
        let model = try LocalModel.load(self.model, config: cfg, precision: precision)
        MemoryTrace.mark("generate: loaded")
        let job = try resolve(model)
        guard let pipeline = model.pipeline else { throw CLIError("model \(model.name) is not class-conditional") }
        guard let samplerName = SamplerName(rawValue: job.sampler) else {
            throw CLIError("sampler \"\(job.sampler)\" is not implemented by the engine")
        }
        let label: Int
        if case .classLabel(let id, _) = job.conditioning { label = id } else { label = 0 }

        // Initial noise: seeds, or a stored good seed.
        let needsStore = options.saveSeedAs != nil || options.seedRef != nil
        let store = needsStore ? try openStore(cfg) : nil
        var base: UInt64 = 0
        var stored: [[Float]]?
        switch job.seed {
        case .value(let s, let generated):
            base = s
            if generated { warn("seed \(s)") }
        case .stored(let name):
            (stored, base) = try loadStored(name, store: store, model: model, job: job)
        }
        let seeds = job.seeds(base: base)
        let requests = seeds.enumerated().map { i, s in
            SampleRequest(label: label, guidanceScale: job.guidance,
                          noise: stored.map { .latents($0[i % $0.count]) } ?? .seed(Int64(bitPattern: s)),
                          cacheThreshold: job.cacheThreshold)
        }

        let start = Date()
        let outcomes = try Self.withProgress(start) { callback in
            try pipeline.generate(requests: requests, steps: job.steps, sampler: samplerName,
                                  height: job.height, width: job.width, callback: callback)
        }
        let noise = try writeImages(outcomes, job: job, seeds: seeds)
        if job.cacheThreshold > 0 {
            let skipped = outcomes.compactMap(\.image).map(\.cachedSteps)
            warn("step cache (threshold \(job.cacheThreshold)): block 0 only at \(skipped.map(String.init).joined(separator: ", ")) of \(job.steps) steps per image")
        }
        if let name = job.saveSeedAs, let store {
            let s = pipeline.decoder.scale
            let shape = [job.count, pipeline.denoiser.inChannels, job.height / s, job.width / s]
            do {
                try store.save(name: name, noise: noise, shape: shape, seed: base, model: model.name,
                               width: job.width, height: job.height)
            } catch let e as WorkerError {
                throw CLIError("the image(s) were written but the seed could not be stored: \(e.message)")
            }
            warn("stored seed \"\(name)\" in \(store.directory)")
        }
        warn(String(format: "%d image(s) %dx%d, %d steps %@, %.1f s", job.count, job.width, job.height, job.steps,
                    job.sampler, Date().timeIntervalSince(start)))
    }

    /// The contract's validation and defaults, against a catalog of this one model (any size that fits
    /// the model's granularity: the served-sizes list is a worker's policy, not a limit of the engine).
    func resolve(_ model: Engine.Model) throws -> Job {
        var info = model.info
        info.sizes = []
        let catalog = Catalog(models: [info], defaultModel: info.name,
                              sizeClasses: [SizeClass(name: "local", maxPixels: 4096 * 4096)])
        var r = JobRequest()
        r.v = 1
        r.id = "local"
        r.model = info.name
        options.apply(to: &r)
        do {
            return try r.resolve(properties: JobProperties(), catalog: catalog)
        } catch {
            var message = error.failure.message
            if let prompt = options.prompt, message.contains("is not a label of model") {
                message = "--prompt \"\(prompt)\" is not a label of model \(info.name); labels: " + Self.labelList(model)
            }
            // The contract names JSON fields; here they are flags.
            throw CLIError(oneLine(JobOptions.flagNames(in: message)))
        }
    }

    /// Every named label: "0 red circle, red disc; 1 blue square; ...".
    static func labelList(_ model: Engine.Model) -> String {
        let names = model.pipeline?.id2label ?? [:]
        guard !names.isEmpty else { return "none (give --class-id N, 0-\(model.info.numClasses - 1))" }
        return names.keys.sorted().map { "\($0) \(names[$0]!)" }.joined(separator: "; ")
    }

    func openStore(_ cfg: DarkroomConfig) throws -> SeedStore {
        do {
            return try SeedStore(directory: seedsDir ?? cfg.seedsDir)
        } catch let e as WorkerError {
            throw CLIError(e.message + " (give --seeds-dir)")
        }
    }

    /// A stored noise that fits this job: rows `[C, h, w]` and the seed it was made from.
    func loadStored(_ name: String, store: SeedStore?, model: Engine.Model, job: Job) throws -> ([[Float]], UInt64) {
        guard let store else { throw CLIError("no seed store") }
        let loaded: (entry: SeedStore.Entry, noise: [Float])
        do {
            loaded = try store.load(name: name)
        } catch let e as WorkerError {
            throw CLIError("--seed-ref: \(e.message) in \(store.directory)")
        }
        guard let p = model.pipeline else { throw CLIError("--seed-ref is for class-conditional models") }
        let s = p.decoder.scale
        let want = [p.denoiser.inChannels, job.height / s, job.width / s]
        let shape = loaded.entry.shape
        guard shape.count == 4, Array(shape[1...]) == want, shape[0] >= 1 else {
            throw CLIError("stored seed \"\(name)\" holds noise of shape \(shape) (made for \(loaded.entry.width)x\(loaded.entry.height) "
                           + "on \(loaded.entry.model)); \(job.width)x\(job.height) on \(job.model) needs [n, \(want.map(String.init).joined(separator: ", "))]")
        }
        let n = want.reduce(1, *)
        let rows = (0..<shape[0]).map { Array(loaded.noise[($0 * n)..<(($0 + 1) * n)]) }
        return (rows, UInt64(loaded.entry.seed) ?? 0)
    }

    /// Runs `body` with a callback that draws the progress bar; a failure becomes one line.
    static func withProgress(_ start: Date, _ body: (@escaping (SamplerProgress) -> Set<Int>) throws -> [SampleOutcome]) throws -> [SampleOutcome] {
        let bar = Locked(ProgressBar())
        defer { bar.withLock { $0.finish() } }
        do {
            return try body { progress in
                let elapsed = Date().timeIntervalSince(start)
                let eta = elapsed / Double(progress.step) * Double(progress.steps - progress.step)
                bar.withLock { $0.update(step: progress.step, steps: progress.steps, etaMs: Int64(eta * 1000)) }
                return []
            }
        } catch {
            throw CLIError(oneLine("generation failed: \(error)"))
        }
    }

    /// Writes image i of the job as `output` (or `output-<i>.png`) with its parameters; returns the initial noise rows.
    func writeImages(_ outcomes: [SampleOutcome], job: Job, seeds: [UInt64]) throws -> [Float] {
        var noise: [Float] = []
        for (i, outcome) in outcomes.enumerated() {
            guard let image = outcome.image else { throw CLIError("image \(i) was not produced") }
            noise += image.initialNoise
            let png = try ImageEvent(job: job, index: i, seed: seeds[i], rgb: image.rgb.pixels).png
            let path = Self.path(output, index: i, count: job.count)
            do {
                try Data(png).write(to: URL(fileURLWithPath: path))
            } catch {
                throw CLIError("cannot write \(path): \(error.localizedDescription)")
            }
            print(path)
        }
        return noise
    }

    /// `out.png` for one image; `out-<i>.png` for several.
    static func path(_ output: String, index: Int, count: Int) -> String {
        guard count > 1 else { return output }
        let base = output.hasSuffix(".png") ? String(output.dropLast(4)) : output
        return base + "-\(index).png"
    }
}
