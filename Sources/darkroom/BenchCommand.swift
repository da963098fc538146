import ArgumentParser
import Core
import Diffusion
import Foundation
import Tensor
import Text
import Weights

/// `darkroom bench`: the Swift side of the engine benchmark (bench/engine/README.md, "The Darkroom
/// hook"). bench/engine/run.sh calls it once per op in its own process; it loads the pipeline (untimed),
/// runs the op warmup + repeats times, timing each call alone, saves the last output as safetensors
/// tensor `out`, and prints `{"times_s": [...]}` as its last stdout line.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time one engine op for bench/engine/run.sh or bench/text/run.sh (transformer forward, VAE decode, sgemm, text encoder).",
        discussion: "Run `bench/engine/run.sh --darkroom '<path>/darkroom bench'`; see bench/engine/README.md and bench/text/README.md.")

    enum Op: String, ExpressibleByArgument {
        case transformer, vaeDecode = "vae-decode", sgemm, textEncoder = "text-encoder", conv3x3 = "conv3x3"
        case sanaTransformer = "sana-transformer", pixArtTransformer = "pixart-transformer", dcaeDecode = "dcae-decode"
        case sanaSprint = "sana-sprint", sanaSprintText = "sana-sprint-text"
    }

    @Option(help: "The pipeline folder (transformer/, vae/); for text-encoder the text_encoder/ folder.") var model: String?
    @Option(help: "Inputs written by the harness (x, t, labels | z | input_ids, attention_mask), F32 safetensors.") var inputs: String?
    @Option(help: "Where to save the last call's output (tensor `out`).") var save: String?
    @Option(help: "BLAS threads.") var threads: Int?
    @Option(help: "transformer, vae-decode, sgemm, text-encoder, conv3x3, sana-transformer, pixart-transformer, dcae-decode, sana-sprint (a whole image from caption embeddings) or sana-sprint-text (a whole image from --prompt, text encoder included).")
    var op: Op
    @Option(help: "Batch size (checked against the inputs).") var batch: Int = 1
    @Option(help: "Image size in pixels (sgemm: the matrix side).") var size: Int = 256
    @Option(help: "Untimed calls first.") var warmup: Int = 1
    @Option(help: "Timed calls.") var repeats: Int = 3
    @Option(help: "conv3x3: input and output channels (a 3×3, stride-1, padding-1 convolution on --size² pixels).")
    var channels: Int = 128
    @Option(help: "conv3x3: automatic, im2col, winograd, dnnl-winograd or dnnl-direct.") var algorithm: String = "automatic"
    @Option(help: "sana-sprint(-text): denoising steps.") var steps: Int = 2
    @Option(help: "sana-sprint-text: the prompt.") var prompt: String = "a red fox in the snow, photograph"
    @Option(help: "Hold the model's weights as bf16, fp16 or fp32, converted at load (default: as the files store them); conv3x3: bf16 or fp16 holds the filter 16-bit (oneDNN's bf16 kernel, or widened per call).")
    var precision: WeightPrecision?

    func run() async throws {
        if let threads, threads > 0 { setBLASThreadCount(threads) }
        guard repeats >= 1, warmup >= 0 else { throw CLIError("--repeats must be at least 1 and --warmup at least 0") }
        var extra: [String: Double] = [:]
        let call: () throws -> Tensor
        switch op {
        case .sgemm:
            let n = size
            let a = (0..<(n * n)).map { _ in Float.random(in: -1...1) }, b = (0..<(n * n)).map { _ in Float.random(in: -1...1) }
            var c = [Float](repeating: 0, count: n * n)
            call = {
                c.withUnsafeMutableBufferPointer { cp in
                    sgemm(transA: false, transB: false, m: n, n: n, k: n, alpha: 1, a, lda: n, b, ldb: n, beta: 0, cp.baseAddress!, ldc: n)
                }
                return Tensor(shape: [n, n], data: c)
            }
        case .conv3x3:
            guard let algorithm = Conv2dAlgorithm(rawValue: algorithm) else {
                throw CLIError("--algorithm must be one of \(Conv2dAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard channels >= 1, size >= 1 else { throw CLIError("--channels and --size must be at least 1") }
            let g = Conv2dGeometry(inChannels: channels, outChannels: channels, height: size, width: size, kernel: 3, padding: 1)
            let x = (0..<(channels * size * size)).map { _ in Float.random(in: -1...1) }
            let w = (0..<(channels * channels * 9)).map { _ in Float.random(in: -0.05...0.05) }, b = [Float](repeating: 0.1, count: channels)
            var y = [Float](repeating: 0, count: channels * size * size)
            if let format = precision?.halfFormat {
                // the weight held 16-bit: oneDNN's bf16 kernel where the CPU has one, else widened per call (--algorithm unused)
                let bits = w.map { format == .bf16 ? floatToBF16Bits($0) : floatToHalfBits($0) }
                var scratch = [Float](repeating: 0, count: g.scratchCount(half: format))
                extra["scratch_mib"] = Double(scratch.count) * 4 / 1_048_576
                if g.prefersBF16DNNL(format) { extra["dnnl_strip_rows"] = Double(g.dnnlStripRows(.directBF16) ?? 0) }
                call = {
                    bits.withUnsafeBufferPointer { p in
                        let half = HalfMatrix(format: format, shape: [channels, channels, 3, 3], pointer: p.baseAddress!,
                                              owner: NSNull())
                        conv2d(&y, x, half: half, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count)
                    }
                    return Tensor(shape: [1, channels, size, size], data: y)
                }
            } else {
                var scratch = [Float](repeating: 0, count: g.scratchCount(for: algorithm))
                extra["scratch_mib"] = Double(scratch.count) * 4 / 1_048_576
                if let kind = g.prefersDNNL, algorithm == .automatic { extra["dnnl_strip_rows"] = Double(g.dnnlStripRows(kind) ?? 0) }
                call = {
                    conv2d(&y, x, w, b, batch: 1, geometry: g, scratch: &scratch, scratchCount: scratch.count, algorithm: algorithm)
                    return Tensor(shape: [1, channels, size, size], data: y)
                }
            }
        case .sanaTransformer, .pixArtTransformer, .dcaeDecode:
            // bench/t2i: --model is the component folder (config.json + diffusion_pytorch_model.safetensors).
            guard let model, let inputs else { throw CLIError("--op \(op.rawValue) needs --model DIR and --inputs FILE") }
            let loadStart = Date()
            let folder = URL(fileURLWithPath: model)
            let file: SafeTensorsFile
            let run: (SafeTensorsFile) throws -> () throws -> Tensor
            do {
                let configData = try Data(contentsOf: folder.appendingPathComponent("config.json"))
                let weights = PrecisionWeights.wrap(
                    try SafeTensorsFile(url: folder.appendingPathComponent("diffusion_pytorch_model.safetensors")), precision)
                file = try SafeTensorsFile(path: inputs)
                func input(_ name: String, _ f: SafeTensorsFile) throws -> Tensor {
                    let w = try f.weight(name)
                    return Tensor(shape: w.shape, data: Array(w.buffer))
                }
                switch op {
                case .sanaTransformer, .pixArtTransformer:
                    let forward: (Tensor, [Float], Tensor, [Float]) throws -> Tensor
                    if op == .sanaTransformer {
                        let m = try SanaTransformer2DModel(config: JSONDecoder().decode(SanaTransformer2DModel.Config.self, from: configData),
                                                           weights: weights)
                        forward = { try m.forward($0, timesteps: $1, caption: $2, captionMask: $3) }
                    } else {
                        let m = try PixArtTransformer2DModel(config: JSONDecoder().decode(PixArtTransformer2DModel.Config.self, from: configData),
                                                             weights: weights)
                        forward = { try m.forward($0, timesteps: $1, caption: $2, captionMask: $3) }
                    }
                    run = { f in
                        let x = try input("x", f), t = try input("t", f), caption = try input("caption", f), mask = try input("mask", f)
                        return { try forward(x, t.data, caption, mask.data) }
                    }
                default:
                    let m = try AutoencoderDC(config: JSONDecoder().decode(AutoencoderDC.Config.self, from: configData), weights: weights,
                                              decoderOnly: true)
                    run = { f in
                        let z = try input("z", f)
                        return { try m.decode(z) }   // z as given: no 1/scaling_factor
                    }
                }
                call = try run(file)
            } catch {
                throw CLIError(oneLine("\(model): \(error)"))
            }
            extra["load_s"] = Date().timeIntervalSince(loadStart)
        case .sanaSprint, .sanaSprintText:
            // bench/t2i: --model is a SanaSprintPipeline folder; seed 0, guidance 4.5, no resolution binning, the
            // image (x / 2 + 0.5 clamped, [1, 3, S, S]) is the output. sana-sprint takes `caption` [1, L, H] and `mask`
            // [1, L] from --inputs (diffusers' prompt_embeds / prompt_attention_mask: no text encoder run).
            guard let model else { throw CLIError("--op \(op.rawValue) needs --model PIPELINE_DIR") }
            let loadStart = Date()
            let pipe: TextToImagePipeline
            var embeds: (embeddings: [[Float]], masks: [[Float]])? = nil
            do {
                pipe = try TextToImagePipeline(url: URL(fileURLWithPath: model), precision: precision)
                if op == .sanaSprint {
                    guard let inputs else { throw CLIError("--op sana-sprint needs --inputs FILE (caption, mask)") }
                    let f = try SafeTensorsFile(path: inputs)
                    let caption = try f.weight("caption"), mask = try f.weight("mask")
                    embeds = ([Array(caption.buffer)], [Array(mask.buffer)])
                }
            } catch let e as CLIError {
                throw e
            } catch {
                throw CLIError(oneLine("\(model): \(error)"))
            }
            extra["load_s"] = Date().timeIntervalSince(loadStart)
            extra["rss_after_load_mib"] = Self.residentMiB()
            let request = TextRequest(prompt: prompt, guidanceScale: 4.5, seed: 0), side = size, steps = steps
            call = {
                let out = try pipe.generate([request], steps: steps, height: side, width: side, binning: false, promptEmbeds: embeds)
                guard let image = out.first?.image else { throw CLIError("no image") }
                return Tensor(shape: [1, 3, side, side], data: image.image)
            }
        case .textEncoder:
            guard let model, let inputs else { throw CLIError("--op text-encoder needs --model DIR and --inputs FILE") }
            let loadStart = Date()
            let encoder: TextEncoder
            let batchIn: TokenBatch
            do {
                encoder = try TextEncoder(folder: URL(fileURLWithPath: model), precision: precision)
                let file = try SafeTensorsFile(path: inputs)
                let ids = try file.weight("input_ids"), mask = try file.weight("attention_mask")
                guard ids.shape.count == 2, ids.shape == mask.shape, ids.shape[0] == batch else {
                    throw CLIError("inputs input_ids \(ids.shape), attention_mask \(mask.shape) do not hold batch \(batch)")
                }
                let n = ids.shape[1]
                batchIn = withExtendedLifetime((ids, mask)) {
                    TokenBatch(ids: (0..<batch).map { b in (0..<n).map { Int(ids.pointer[b * n + $0]) } },
                               mask: (0..<batch).map { b in (0..<n).map { Int(mask.pointer[b * n + $0]) } })
                }
            } catch let e as CLIError {
                throw e
            } catch {
                throw CLIError(oneLine("\(error)"))
            }
            extra["load_s"] = Date().timeIntervalSince(loadStart)
            extra["rss_after_load_mib"] = Self.residentMiB()
            let kernelCount = threads.map { max(1, $0) } ?? kernelThreads
            call = { try encoder.encode(batchIn, threads: kernelCount) }
        case .transformer, .vaeDecode:
            guard let model, let inputs else { throw CLIError("--op \(op.rawValue) needs --model DIR and --inputs FILE") }
            let loadStart = Date()
            let pipeline: DiffusionPipeline
            let file: SafeTensorsFile
            do {
                pipeline = try DiffusionPipeline.load(path: model, precision: precision)
                file = try SafeTensorsFile(path: inputs)
            } catch {
                throw CLIError(oneLine("\(error)"))
            }
            extra["load_s"] = Date().timeIntervalSince(loadStart)
            func tensor(_ name: String) throws -> Tensor {
                do {
                    let w = try file.weight(name)
                    return Tensor(shape: w.shape, data: Array(w.buffer))
                } catch {
                    throw CLIError(oneLine("\(inputs): \(error)"))
                }
            }
            if op == .transformer {
                let x = try tensor("x"), t = try tensor("t"), labels = try tensor("labels")
                guard x.shape.count == 4, x.shape[0] == batch, t.count == batch, labels.count == batch else {
                    throw CLIError("inputs x \(x.shape), t \(t.shape), labels \(labels.shape) do not hold batch \(batch)")
                }
                let denoiser = pipeline.denoiser
                let ids = labels.data.map { Int($0) }
                call = { try denoiser.forward(x, timesteps: t.data, labels: ids) }
            } else {
                let z = try tensor("z")
                guard z.shape.count == 4, z.shape[0] == batch else { throw CLIError("input z \(z.shape) does not hold batch \(batch)") }
                guard let vae = (pipeline.decoder as? VAEDecoder)?.vae else {
                    throw CLIError("\(model) has no vae/: nothing to decode")
                }
                call = { try vae.decode(z) }   // z as given: no 1/scaling_factor (the contract)
            }
        }

        MemoryTrace.mark("bench \(op.rawValue): loaded")
        var times: [Double] = []
        var cpuTimes: [Double] = []
        var last: Tensor?
        for i in 0..<(warmup + repeats) {
            let cpuStart = Self.processCPUSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                last = try call()
            } catch {
                throw CLIError(oneLine("\(op.rawValue) failed: \(error)"))
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if i >= warmup {
                times.append(seconds)
                cpuTimes.append(Self.processCPUSeconds() - cpuStart)
            }
            warn(String(format: "%@ call %d: %.3f s", op.rawValue, i + 1, seconds))
            MemoryTrace.mark("bench \(op.rawValue): call \(i + 1) done")
        }
        if let save, let last, op != .sgemm, op != .conv3x3 {
            do {
                try SafeTensorsWriter.write(tensors: [("out", last.shape, last.data)], to: URL(fileURLWithPath: save))
            } catch {
                throw CLIError(oneLine("cannot write \(save): \(error)"))
            }
        }
        if op == .textEncoder { extra["rss_after_run_mib"] = Self.residentMiB() }
        extra["cpu_s"] = cpuTimes.min() ?? 0   // the process's CPU seconds in the fastest timed call (a check under load)
        var json = "{\"times_s\": [" + times.map { String($0) }.joined(separator: ", ") + "]"
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { json += ", \"\(k)\": \(v)" }
        json += ", \"blas_threads\": \(blasThreadCount), \"kernel_threads\": \(kernelThreads)}"
        print(json)
    }

    /// User + system CPU seconds of this process so far (getrusage).
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// VmRSS of this process in MiB (/proc/self/status), 0 where unknown.
    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }
}
