// `darkroom generate` for text-to-image folders (model_index.json `_class_name` PixArtSigmaPipeline, PixArtAlphaPipeline,
// SanaPipeline, SanaSprintPipeline): the flags go through the contract's validation and defaults (a catalog of this
// one text model), the engine is `TextToImagePipeline`, and the PNG carries the same `parameters` text as a worker's.
import Config
import Diffusion
import Foundation
import Jobs
import Weights
import Worker

extension Generate {
    /// (name, folder) when `arg` names a text-to-image folder; nil otherwise (class-conditional or not a folder).
    static func textModel(_ arg: String?, config: DarkroomConfig) -> (String, String)? {
        let (name, path) = LocalModel.locate(arg, config: config)
        guard let folder = try? PipelineFolder(url: URL(fileURLWithPath: path)),
              TextToImagePipeline.Family(rawValue: folder.className) != nil else { return nil }
        return (name, path)
    }

    func generateText(name: String, path: String, config cfg: DarkroomConfig) throws {
        guard options.seedRef == nil, options.saveSeedAs == nil else {
            throw CLIError("--seed-ref and --save-seed-as are for class-conditional models; text models take --seed")
        }
        let pipe: TextToImagePipeline
        do {
            pipe = try TextToImagePipeline(url: URL(fileURLWithPath: path), precision: precision ?? LocalModel.configured(name, cfg))
        } catch {
            throw CLIError(oneLine("cannot load model \(name) (\(path)): \(error)"))
        }
        let info = Engine.textInfo(name: name, pipe)
        let catalog = Catalog(models: [info], defaultModel: name, sizeClasses: [SizeClass(name: "local", maxPixels: 4096 * 4096)])
        var r = JobRequest()
        r.v = 1
        r.id = "local"
        r.model = name
        options.apply(to: &r)
        let job: Job
        do {
            job = try r.resolve(properties: JobProperties(), catalog: catalog)
        } catch {
            throw CLIError(oneLine(JobOptions.flagNames(in: error.failure.message)))
        }
        guard case .text(let prompt, let negative) = job.conditioning else { throw CLIError("model \(name) reads text: give --prompt") }
        guard case .value(let base, let generated) = job.seed else { throw CLIError("text models take --seed") }
        if generated { warn("seed \(base)") }
        let seeds = job.seeds(base: base)
        let requests = seeds.map {
            TextRequest(prompt: prompt, negativePrompt: negative, guidanceScale: job.guidance, seed: Int64(bitPattern: $0))
        }

        let start = Date()
        let outcomes = try Self.withProgress(start) { callback in
            try pipe.generate(requests, steps: job.steps, height: job.height, width: job.width, binning: job.useResolutionBinning, callback: callback)
        }
        _ = try writeImages(outcomes, job: job, seeds: seeds)
        warn(String(format: "%d image(s) %dx%d%@, %d steps %@, %.1f s", job.count, job.width, job.height,
                    job.useResolutionBinning == true ? " (binned)" : "", job.steps, job.sampler, Date().timeIntervalSince(start)))
    }
}
