// The `darkroom` binary's local commands, run as a person runs them: generate (against diffusers'
// own image), models inspect, the seed store round trip, and one-line errors on bad input and on a
// corrupt model folder. No broker needed.
import Diffusion
import Foundation
import Imaging
import Testing

private struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

private struct CLIRun {
    let code: Int32
    let stdout: String
    let stderr: String
    /// stderr's non-empty lines.
    var errorLines: [String] { stderr.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty } }
}

/// Runs `darkroom args...` with output in files (no pipe can fill up) and no config file from the machine.
private func runCLI(_ args: [String], in dir: String) throws -> CLIRun {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DARKROOM_") }
    env["DARKROOM_SEEDS_DIR"] = dir + "/seeds-from-env"
    let r = try runCapturing(darkroomBinary(), args, environment: env, in: dir)
    return CLIRun(code: r.code, stdout: r.stdout, stderr: r.stderr)
}

/// Runs a program to its end with stdout and stderr in files (no pipe can fill up) and returns both.
func runCapturing(_ executable: String, _ args: [String], environment: [String: String], in dir: String) throws
    -> (code: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: dir)
    p.environment = environment
    let out = dir + "/.stdout-\(UUID().uuidString)", err = dir + "/.stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    try p.run()
    p.waitUntilExit()
    let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }
    return (p.terminationStatus, read(out), read(err))
}

private func cliTempDir() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-cli-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

private func cliPNG(_ path: String) throws -> PNG.Image {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLITestError("no file at \(path)") }
    return try PNG.decode(Array(data))
}

private let cliLatentDiT = fixtureModels + "/latent-dit"
private let cliPixelDiT = fixtureModels + "/pixel-dit"
private let cliExpected = fixtureModels + "/expected"

/// A failure a person can read: non-zero exit, exactly one line on stderr, no crash or backtrace.
private func expectOneLineError(_ r: CLIRun, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.code != 0, "exit code", sourceLocation: sourceLocation)
    #expect(r.code < 128, "killed by a signal: \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.errorLines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    for word in ["Fatal error", "Stack dump", "backtrace", "Crash"] {
        #expect(!r.stderr.contains(word), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }
    for m in mentions { #expect(r.stderr.contains(m), "stderr lacks \(m): \(r.stderr)", sourceLocation: sourceLocation) }
}

@Suite("darkroom CLI (local commands)")
struct CLITests {
    @Test("generate on the latent fixture writes diffusers' image (latent-ddim-cfg4, row 0) within 1/255, with parameters")
    func generateMatchesDiffusers() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Row 0 of the case: label 1 ("blue square"), seed 1, guidance 4, ddim, 10 steps, 32x32.
        let r = try runCLI(["generate", "--model", cliLatentDiT, "--prompt", "blue square", "--seed", "1", "--steps", "10",
                              "--guidance", "4", "--sampler", "ddim", "--width", "32", "--height", "32", "-o", "out.png"], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        let got = try cliPNG(dir + "/out.png")
        let want = try cliPNG(cliExpected + "/latent-ddim-cfg4-0.png")
        #expect(got.width == 32 && got.height == 32)
        #expect(got.pixels.count == want.pixels.count)
        let worst = zip(got.pixels, want.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "largest channel difference \(worst)/255")
        let text = got.text("parameters") ?? ""
        #expect(text.hasPrefix("blue square\n"), "\(text)")
        for field in ["Steps: 10", "Sampler: ddim", "CFG scale: 4.0", "Seed: 1,", "Size: 32x32", "Model: latent-dit", "Class id: 1"] {
            #expect(text.contains(field), "parameters lack \(field): \(text)")
        }
        #expect(r.stderr.contains("10/10"), "progress: \(r.stderr)")
    }

    @Test("generate --count 2 on the pixel fixture: image i uses seed + i (pixel-flow-cfg3 row 1 = seed 12)")
    func countUsesConsecutiveSeeds() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["generate", "--model", cliPixelDiT, "--class-id", "5", "--seed", "11", "--steps", "8", "--guidance", "3",
                              "--count", "2", "-o", "img.png"], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.split(separator: "\n") == ["img-0.png", "img-1.png"])
        let got = try cliPNG(dir + "/img-1.png"), want = try cliPNG(cliExpected + "/pixel-flow-cfg3-1.png")
        #expect(zip(got.pixels, want.pixels).allSatisfy { abs(Int($0) - Int($1)) <= 1 })
        #expect(got.text("parameters")?.contains("Seed: 12,") == true)
    }

    @Test("a truncated safetensors file in the model folder is a one-line error, not a crash")
    func truncatedModelFolder() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: cliLatentDiT, toPath: dir + "/broken")
        let weights = dir + "/broken/transformer/diffusion_pytorch_model.safetensors"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int)
        let h = try #require(FileHandle(forWritingAtPath: weights))
        try h.truncate(atOffset: UInt64(size / 2))
        try h.close()
        let r = try runCLI(["generate", "--model", dir + "/broken", "--class-id", "1", "--seed", "1", "-o", "x.png"], in: dir)
        expectOneLineError(r, mentions: ["diffusion_pytorch_model.safetensors", "truncated"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.png"))
        let inspect = try runCLI(["models", "inspect", dir + "/broken"], in: dir)
        expectOneLineError(inspect, mentions: ["truncated"])
    }

    @Test("a model folder whose model_index.json is not JSON is a one-line error")
    func corruptModelIndex() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: cliLatentDiT, toPath: dir + "/broken")
        try Data("{\"_class_name\": ".utf8).write(to: URL(fileURLWithPath: dir + "/broken/model_index.json"))
        let r = try runCLI(["generate", "--model", dir + "/broken", "--class-id", "1", "-o", "x.png"], in: dir)
        expectOneLineError(r, mentions: ["model_index.json"])
    }

    @Test("models quantize writes an int8 folder that generates and inspects; bad input is a one-line error")
    func modelsQuantize() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ok = try runCLI(["models", "quantize", cliLatentDiT, "--to", "int8", "-o", dir + "/q8"], in: dir)
        #expect(ok.code == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("tensors of transformer to int8"), "\(ok.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/q8/darkroom_quantization.json"))
        let inspect = try runCLI(["models", "inspect", dir + "/q8"], in: dir)
        #expect(inspect.code == 0 && inspect.stdout.contains("I8"), "\(inspect.stdout)\(inspect.stderr)")
        let gen = try runCLI(["generate", "--model", dir + "/q8", "--class-id", "1", "--seed", "1", "-o", "q.png"], in: dir)
        #expect(gen.code == 0 && FileManager.default.fileExists(atPath: dir + "/q.png"), "\(gen.stderr)")
        expectOneLineError(try runCLI(["models", "quantize", cliLatentDiT, "--to", "int4", "-o", dir + "/x"], in: dir),
                           mentions: ["int4", "int8, bf16"])
        expectOneLineError(try runCLI(["models", "quantize", dir, "--to", "int8", "-o", dir + "/x"], in: dir),
                           mentions: ["not a model folder"])
        expectOneLineError(try runCLI(["models", "quantize", cliLatentDiT, "--to", "int8", "-o", dir + "/q8"], in: dir),
                           mentions: ["already exists"])
        try FileManager.default.copyItem(atPath: cliLatentDiT, toPath: dir + "/broken")
        let weights = dir + "/broken/transformer/diffusion_pytorch_model.safetensors"
        let h = try #require(FileHandle(forWritingAtPath: weights))
        try h.truncate(atOffset: 100)
        try h.close()
        expectOneLineError(try runCLI(["models", "quantize", dir + "/broken", "--to", "int8", "-o", dir + "/x"], in: dir),
                           mentions: ["diffusion_pytorch_model.safetensors", "truncated"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/x"))
    }

    @Test("bad settings are one-line errors: unknown label (with the labels), size off the grid, class out of range, wrong sampler")
    func badSettings() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["generate", "--model", cliLatentDiT, "--seed", "1", "--steps", "2", "-o", "x.png"]
        expectOneLineError(try runCLI(base + ["--prompt", "purple blob"], in: dir),
                           mentions: ["purple blob", "red circle", "blue square", "green triangle", "yellow star", "white ring"])
        expectOneLineError(try runCLI(base + ["--class-id", "1", "--width", "36"], in: dir), mentions: ["--width", "multiple of 8"])
        expectOneLineError(try runCLI(base + ["--class-id", "1000"], in: dir), mentions: ["--class-id", "0 to 999"])
        expectOneLineError(try runCLI(base + ["--class-id", "1", "--sampler", "flow_euler"], in: dir), mentions: ["ddim, dpmpp_2m, euler"])
        expectOneLineError(try runCLI(base + ["--class-id", "1", "--prompt", "blue square"], in: dir), mentions: ["not both"])
        expectOneLineError(try runCLI(["generate", "--model", dir + "/nothing-here", "--class-id", "1"], in: dir), mentions: ["nothing-here"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.png"))
    }

    @Test("models inspect prints components, parameter counts, scheduler, defaults and every label")
    func inspectListsLabels() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["models", "inspect", cliLatentDiT], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        for text in ["DiTPipeline", "DiTTransformer2DModel", "AutoencoderKL", "DDIMScheduler", "patch 2", "parameters",
                     "sample size 8", "steps 50", "labels: 5 named of 1000 classes",
                     "0     red circle, red disc", "1     blue square", "2     green triangle", "3     yellow star", "4     white ring"] {
            #expect(r.stdout.contains(text), "inspect output lacks \(text):\n\(r.stdout)")
        }
        let pixel = try runCLI(["models", "inspect", cliPixelDiT], in: dir)
        #expect(pixel.code == 0)
        #expect(pixel.stdout.contains("FlowMatchEulerDiscreteScheduler") && pixel.stdout.contains("vae: none")
                && pixel.stdout.contains("5     black cross"))
    }

    @Test("seeds: save-seed-as, list, show, seed-ref gives the identical PNG, export/import, rm, and clear errors")
    func seedsRoundTrip() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/seeds"
        let gen = ["generate", "--model", cliPixelDiT, "--prompt", "yellow star", "--steps", "3", "--guidance", "3", "--count", "2",
                   "--seeds-dir", store]
        let first = try runCLI(gen + ["--seed", "77", "--save-seed-as", "keeper", "-o", "a.png"], in: dir)
        #expect(first.code == 0, "stderr: \(first.stderr)")

        let list = try runCLI(["seeds", "list", "--dir", store], in: dir)
        #expect(list.code == 0)
        #expect(list.stdout.contains("keeper") && list.stdout.contains("16x16") && list.stdout.contains("pixel-dit") && list.stdout.contains("77"))
        let show = try runCLI(["seeds", "show", "keeper", "--dir", store], in: dir)
        #expect(show.code == 0)
        #expect(show.stdout.contains("[2, 3, 16, 16]") && show.stdout.contains("seed:      77"), "\(show.stdout)")

        let again = try runCLI(gen + ["--seed-ref", "keeper", "-o", "b.png"], in: dir)
        #expect(again.code == 0, "stderr: \(again.stderr)")
        for i in 0..<2 {
            #expect(try cliPNG(dir + "/a-\(i).png").pixels == cliPNG(dir + "/b-\(i).png").pixels, "image \(i) differs")
        }

        // A stored noise of another shape is refused with the shapes named.
        let misfit = try runCLI(["generate", "--model", cliLatentDiT, "--class-id", "1", "--seed-ref", "keeper", "--seeds-dir", store,
                                   "-o", "c.png"], in: dir)
        expectOneLineError(misfit, mentions: ["keeper", "[2, 3, 16, 16]"])

        let exported = dir + "/keeper-copy.safetensors"
        #expect(try runCLI(["seeds", "export", "keeper", exported, "--dir", store], in: dir).code == 0)
        #expect(try runCLI(["seeds", "import", exported, "--name", "copy", "--dir", store], in: dir).code == 0)
        let rm = try runCLI(["seeds", "rm", "keeper", "--dir", store], in: dir)
        #expect(rm.code == 0)
        let after = try runCLI(["seeds", "list", "--dir", store], in: dir)
        #expect(!after.stdout.contains("keeper") && after.stdout.contains("copy"), "\(after.stdout)")
        let fromCopy = try runCLI(gen + ["--seed-ref", "copy", "-o", "d.png"], in: dir)
        #expect(fromCopy.code == 0)
        #expect(try cliPNG(dir + "/a-0.png").pixels == cliPNG(dir + "/d-0.png").pixels)

        expectOneLineError(try runCLI(["seeds", "rm", "keeper", "--dir", store], in: dir), mentions: ["no stored seed named \"keeper\""])
        expectOneLineError(try runCLI(["seeds", "show", "../etc", "--dir", store], in: dir), mentions: ["not a valid seed name"])
        try Data("not safetensors".utf8).write(to: URL(fileURLWithPath: dir + "/junk.safetensors"))
        expectOneLineError(try runCLI(["seeds", "import", dir + "/junk.safetensors", "--name", "junk", "--dir", store], in: dir),
                           mentions: ["junk.safetensors"])
    }

    /// Tokenizer and encoder fixtures of the Text tests (Tests/TextTests/Fixtures).
    private static let textFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("TextTests/Fixtures").path

    @Test("tokenize prints ids and pieces; --json gives transformers' ids with the special tokens, no padding")
    func tokenizeMatchesTransformers() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tokenizers = Self.textFixtures + "/tokenizers"
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tokenizers + "/cases.json"))) as! [String: Any]
        let texts = cases["texts"] as! [String]
        for name in ["gemma", "t5"] {
            let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tokenizers + "/expected-\(name).json"))) as! [String: Any]
            let ids = expected["ids"] as! [[Int]]
            for text in ["A red circle over a blue square.", "👨‍👩‍👧‍👦 family", "<bos>red circle", "ｈｅｌｌｏ"] {
                guard let i = texts.firstIndex(of: text) else { Issue.record("\(text) is not a fixture string"); continue }
                let r = try runCLI(["tokenize", "--json", "--model", tokenizers + "/" + name, text], in: dir)
                #expect(r.code == 0, "stderr: \(r.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
                #expect(object["ids"] as? [Int] == ids[i], "\(name) \(text): \(r.stdout)")
                #expect((object["tokens"] as? [String])?.count == ids[i].count)
            }
        }
        let table = try runCLI(["tokenize", "--model", tokenizers + "/gemma", "red circle"], in: dir)
        #expect(table.code == 0 && table.stdout.contains("\"<bos>\"") && table.stdout.contains("\"▁circle\""), "\(table.stdout)")
        expectOneLineError(try runCLI(["tokenize", "--model", dir + "/nowhere", "x"], in: dir), mentions: ["no tokenizer", "nowhere"])
        try FileManager.default.createDirectory(atPath: dir + "/bad", withIntermediateDirectories: true)
        try Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {".utf8).write(to: URL(fileURLWithPath: dir + "/bad/tokenizer.json"))
        expectOneLineError(try runCLI(["tokenize", "--model", dir + "/bad", "x"], in: dir), mentions: ["tokenizer.json"])
    }

    @Test("models inspect names the tokenizer and the text encoder with sizes and dtypes")
    func inspectNamesTextComponents() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.copyItem(atPath: cliLatentDiT, toPath: dir + "/m")
        try fm.copyItem(atPath: Self.textFixtures + "/tokenizers/t5", toPath: dir + "/m/tokenizer")
        try fm.copyItem(atPath: Self.textFixtures + "/encoders/t5-f16", toPath: dir + "/m/text_encoder")
        let r = try runCLI(["models", "inspect", dir + "/m"], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        for text in ["DiTPipeline", "tokenizer: Unigram", "900 ids", "pad id 0", "text_encoder: T5EncoderModel", "3 shards", "(F16)",
                     "3 layers, d_model 32, 4 heads x 8, d_ff 64"] {
            #expect(r.stdout.contains(text), "inspect output lacks \(text):\n\(r.stdout)")
        }
        // a cut shard: one line naming it
        let shard = dir + "/m/text_encoder/model-00002-of-00003.safetensors"
        try Data(try Data(contentsOf: URL(fileURLWithPath: shard)).prefix(100)).write(to: URL(fileURLWithPath: shard))
        expectOneLineError(try runCLI(["models", "inspect", dir + "/m"], in: dir), mentions: ["model-00002-of-00003.safetensors"])
    }
}


@Suite("darkroom generate on text-to-image folders")
struct TextCLITests {
    @Test("Sana: --prompt, no negative, --no-binning: diffusers' image (sana-2prompts row 0) within 1/255, with parameters")
    func sanaMatchesDiffusers() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["generate", "--model", fixtureModels + "/sana/sana-pipeline", "--prompt", "a red circle", "--seed", "4",
                            "--steps", "6", "--guidance", "4.5", "--width", "32", "--height", "32", "--no-binning", "-o", "out.png"], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        let got = try cliPNG(dir + "/out.png"), want = try cliPNG(cliExpected + "/sana-2prompts-0.png")
        #expect(got.width == 32 && got.height == 32 && got.pixels.count == want.pixels.count)
        let worst = zip(got.pixels, want.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "largest channel difference \(worst)/255")
        let text = got.text("parameters") ?? ""
        #expect(text.hasPrefix("a red circle\n"), "\(text)")
        for field in ["Steps: 6", "Sampler: dpmpp_2m", "CFG scale: 4.5", "Seed: 4,", "Size: 32x32", "Model: sana-pipeline"] {
            #expect(text.contains(field), "parameters lack \(field): \(text)")
        }
        #expect(r.stderr.contains("6/6"), "progress: \(r.stderr)")
    }

    @Test("PixArt-Σ with --negative-prompt, non-square: diffusers' image (pixart-sigma-negative-32x48) within 1/255")
    func pixArtNegativePromptMatchesDiffusers() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["generate", "--model", fixtureModels + "/sana/pixart-sigma-pipeline", "--prompt", "a yellow star",
                            "--negative-prompt", "blurry, dark", "--seed", "3", "--steps", "5", "--guidance", "3",
                            "--width", "48", "--height", "32", "--no-binning", "-o", "out.png"], in: dir)
        #expect(r.code == 0, "stderr: \(r.stderr)")
        let got = try cliPNG(dir + "/out.png"), want = try cliPNG(cliExpected + "/pixart-sigma-negative-32x48-0.png")
        #expect(got.width == 48 && got.height == 32 && got.pixels.count == want.pixels.count)
        let worst = zip(got.pixels, want.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "largest channel difference \(worst)/255")
        #expect((got.text("parameters") ?? "").contains("Negative prompt: blurry, dark"))
    }

    @Test("a text model refuses a missing prompt, a class id and seed store flags in one line")
    func textModelErrorsAreOneLine() throws {
        let dir = try cliTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = fixtureModels + "/sana/sprint-pipeline"
        expectOneLineError(try runCLI(["generate", "--model", model, "--seed", "1", "-o", "x.png"], in: dir), mentions: ["prompt"])
        expectOneLineError(try runCLI(["generate", "--model", model, "--class-id", "1", "--seed", "1", "-o", "x.png"], in: dir),
                           mentions: ["class-id"])
        expectOneLineError(try runCLI(["generate", "--model", model, "--prompt", "a", "--seed-ref", "s", "-o", "x.png"], in: dir),
                           mentions: ["--seed-ref"])
    }
}
