import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

// `models quantize`: the int8 layout it writes (docs/engine.md §1.4), its refusals, and the final images of
// quantized folders against the fp32 folders they came from (PSNR, images in [0, 1], printed so the figures in
// docs/benchmarks.md can be re-read from the test output). Goal ≥ 30 dB; the tests hold every image to it.

private func scratchFolder(_ tag: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-quantize-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
}

private func quantized(_ folder: URL, _ target: QuantizeTarget = .int8, components: [String]? = nil) throws -> URL {
    let out = scratchFolder(folder.lastPathComponent)
    _ = try ModelQuantizer.quantize(folder: folder, to: target, output: out, components: components)
    return out
}

@Suite(.serialized) struct QuantizeTests {
    @Test func int8LayoutIsI8WithPerRowScalesAndEverythingElseUnchanged() throws {
        let source = try #require(PipeFixtures.url("latent-dit"))
        let out = try quantized(source)
        defer { try? FileManager.default.removeItem(at: out) }
        let marker = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent(Int8Layout.markerFile))).objectValue
        #expect(marker?["format"]?.stringValue == "darkroom-int8")
        let a = try SafeTensorsFile(url: source.appendingPathComponent("transformer/diffusion_pytorch_model.safetensors"))
        let b = try SafeTensorsFile(url: out.appendingPathComponent("transformer/diffusion_pytorch_model.safetensors"))
        #expect(b.metadata[Int8Layout.metadataKey] == "int8")
        var quantizedCount = 0
        for name in a.names {
            let info = try #require(a.info(name)), q = try #require(b.info(name))
            #expect(q.shape == info.shape, "\(name)")
            if ModelQuantizer.isLinearWeight(name, info) {
                quantizedCount += 1
                #expect(q.dtype == .I8)
                let s = try #require(b.info(name + Int8Layout.scaleSuffix))
                #expect(s.dtype == .F32 && s.shape == [info.shape[0]])
                guard case .int8(let m) = try b.matrix(name) else { Issue.record("\(name) not served int8"); continue }
                let w = try a.weight(name), d = try b.weight(name)   // `weight` of an int8 tensor: dequantized
                for i in 0..<w.count {
                    let scale = m.scales[i / m.columns]
                    #expect(abs(w.pointer[i] - Float(m.pointer[i]) * scale) <= scale / 2 * 1.001, "\(name)[\(i)]")
                    #expect(d.pointer[i] == Float(m.pointer[i]) * scale)
                }
            } else {
                #expect(try a.rawBytes(name) == b.rawBytes(name), "\(name) changed")
            }
        }
        #expect(quantizedCount > 0)
        // other components and files are copies
        for file in ["model_index.json", "vae/diffusion_pytorch_model.safetensors", "transformer/config.json"] {
            #expect(FileManager.default.contents(atPath: source.appendingPathComponent(file).path)
                    == FileManager.default.contents(atPath: out.appendingPathComponent(file).path), "\(file)")
        }
    }

    @Test func refusesBadInputWithClearErrors() throws {
        let source = try #require(PipeFixtures.url("latent-dit"))
        let out = scratchFolder("refusals")
        defer { try? FileManager.default.removeItem(at: out) }
        func code(_ body: () throws -> Void) -> QuantizeError.Code? {
            do { try body() } catch let e as QuantizeError { return e.code } catch { return nil }
            return nil
        }
        #expect(code { _ = try ModelQuantizer.quantize(folder: source.appendingPathComponent("transformer"), to: .int8, output: out) } == .notAModelFolder)
        #expect(code { _ = try ModelQuantizer.quantize(folder: source, to: .int8, output: out, components: ["unet"]) } == .unknownComponent)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        #expect(code { _ = try ModelQuantizer.quantize(folder: source, to: .int8, output: out) } == .outputExists)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)   // nothing written into it
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path)
            .filter { $0.hasPrefix(".\(out.lastPathComponent).tmp") }
        #expect(leftovers.isEmpty)
    }

    /// The linear weights of an int8 folder take a quarter of their fp32 bytes (plus one scale per row).
    @Test func int8MatricesTakeAQuarterOfTheirFP32Bytes() throws {
        let source = PrecisionFigures.root.appendingPathComponent("models/tiny-shapes")
        let out = try quantized(source)
        defer { try? FileManager.default.removeItem(at: out) }
        let file = try SafeTensorsFile(url: out.appendingPathComponent("transformer/diffusion_pytorch_model.safetensors"))
        var held = 0, fp32 = 0
        for name in file.names where file.dtype(name) == "I8" {
            let m = try file.matrix(name)
            guard case .int8(let q) = m else { Issue.record("\(name)"); continue }
            held += m.storedBytes
            fp32 += 4 * q.count
        }
        let ratio = Double(held) / Double(fp32)
        print("int8: tiny-shapes transformer linear weights \(fp32) bytes as fp32, \(held) held (\(String(format: "%.3f", ratio))x)")
        #expect(fp32 > 0 && ratio < 0.26)
    }

    @Test(arguments: ["latent-ddim-cfg4", "pixel-flow-cfg3"])
    func int8DiTStaysCloseToFP32(name: String) throws {
        let (folder, requests, steps, sampler, h, w) = try PipeFixtures.ditRun(name)
        let out = try quantized(folder)
        defer { try? FileManager.default.removeItem(at: out) }
        let a = try DiffusionPipeline.load(folder).generate(requests: requests, steps: steps, sampler: sampler, height: h, width: w)
        let b = try DiffusionPipeline.load(out).generate(requests: requests, steps: steps, sampler: sampler, height: h, width: w)
        for i in requests.indices {
            let x = try #require(a[i].image).image, y = try #require(b[i].image).image
            let db = PrecisionFigures.psnr(x, y)
            print("int8 vs fp32 (\(int8LinearPath)): DiT \(name) image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 30)
            #expect(x != y, "int8 changed nothing: the quantized weights were not used")
        }
    }

    /// An image made with int8 weights does not depend on its batch-mates: a batch of three = each alone.
    @Test func int8ImagesAreIndependentOfTheBatch() throws {
        let (folder, _, _, sampler, h, w) = try PipeFixtures.ditRun("latent-ddim-cfg4")
        let out = try quantized(folder)
        defer { try? FileManager.default.removeItem(at: out) }
        let pipe = try DiffusionPipeline.load(out)
        let requests = (0..<3).map { SampleRequest(label: $0 + 1, guidanceScale: 4, seed: Int64(10 + $0)) }
        let batch = try pipe.generate(requests: requests, steps: 4, sampler: sampler, height: h, width: w)
        for (i, r) in requests.enumerated() {
            let solo = try pipe.generate(requests: [r], steps: 4, sampler: sampler, height: h, width: w)
            let a = try #require(batch[i].image).image, b = try #require(solo[0].image).image
            #expect(a == b, "request \(i)")
        }
    }

    @Test func int8ShippedModelsStayCloseToFP32() throws {
        let root = PrecisionFigures.root
        let shapes = root.appendingPathComponent("models/tiny-shapes"), q = try quantized(shapes)
        defer { try? FileManager.default.removeItem(at: q) }
        let s = [SampleRequest(label: 0, guidanceScale: 4, seed: 1), SampleRequest(label: 7, guidanceScale: 4, seed: 2)]
        let c = try DiffusionPipeline.load(shapes).generate(requests: s, steps: 24, sampler: .flowEuler, height: 64, width: 64)
        let d = try DiffusionPipeline.load(q).generate(requests: s, steps: 24, sampler: .flowEuler, height: 64, width: 64)
        for i in s.indices {
            let db = PrecisionFigures.psnr(try #require(c[i].image).image, try #require(d[i].image).image)
            print("int8 vs fp32: tiny-shapes 64x64 image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 30)
        }
        let scenes = root.appendingPathComponent("models/tiny-scenes"), qs = try quantized(scenes)
        defer { try? FileManager.default.removeItem(at: qs) }
        let r = [TextRequest(prompt: "a red circle above a blue square", guidanceScale: 4.5, seed: 1),
                 TextRequest(prompt: "a small green triangle left of a large yellow ring", guidanceScale: 4.5, seed: 2)]
        let a = try TextToImagePipeline(url: scenes).generate(r, steps: 20, height: 64, width: 64, binning: false)
        let b = try TextToImagePipeline(url: qs).generate(r, steps: 20, height: 64, width: 64, binning: false)
        for i in r.indices {
            let db = PrecisionFigures.psnr(try #require(a[i].image).image, try #require(b[i].image).image)
            print("int8 vs fp32: tiny-scenes 64x64 image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 30)
        }
    }

    @Test(arguments: 0..<7)
    func int8TextPipelinesStayCloseToFP32(index: Int) throws {
        let (name, folder, prompts, negative, seeds, steps, guidance, height, width, binning) = T2IFixtures.cases[index]
        let url = ModelFixtures.root.appendingPathComponent("sana/\(folder)")
        let out = try quantized(url)
        defer { try? FileManager.default.removeItem(at: out) }
        let requests = zip(prompts, seeds).map { TextRequest(prompt: $0, negativePrompt: negative, guidanceScale: guidance, seed: $1) }
        let fp32 = try TextToImagePipeline(url: url).generate(requests, steps: steps, height: height, width: width, binning: binning)
        let int8 = try TextToImagePipeline(url: out).generate(requests, steps: steps, height: height, width: width, binning: binning)
        for i in requests.indices {
            let a = try #require(fp32[i].image).image, b = try #require(int8[i].image).image
            let db = PrecisionFigures.psnr(a, b)
            print("int8 vs fp32: \(name) image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 30, "\(name) image \(i): PSNR \(db) dB")
            #expect(a != b)
        }
    }

    /// `--to bf16` writes the numbers `precision = "bf16"` computes at load: the same image bit for bit.
    @Test func bf16FolderMatchesConversionAtLoad() throws {
        let folder = try #require(PipeFixtures.url("latent-dit"))
        let out = try quantized(folder, .bf16, components: ["transformer", "vae"])
        defer { try? FileManager.default.removeItem(at: out) }
        let s = [SampleRequest(label: 1, guidanceScale: 4, seed: 3)]
        let a = try DiffusionPipeline.load(folder, precision: .bf16).generate(requests: s, steps: 4, sampler: .ddim, height: 32, width: 32)
        let b = try DiffusionPipeline.load(out).generate(requests: s, steps: 4, sampler: .ddim, height: 32, width: 32)
        let x = try #require(a[0].image).image, y = try #require(b[0].image).image
        #expect(x == y)
    }
}
