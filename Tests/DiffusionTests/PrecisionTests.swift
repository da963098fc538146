import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

// Weights held as bf16 (`precision = "bf16"`, `--precision bf16`) against the fp32 files they were converted
// from: the final images of every text pipeline fixture, the DiT fixtures and both shipped models, as PSNR
// (images in [0, 1]; printed, so the figures in docs/operations.md can be re-read from the test output), and the
// bytes the converted weights take.

enum PrecisionFigures {
    /// 10·log10(1 / MSE) over two images in [0, 1].
    static func psnr(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count && !a.isEmpty)
        let mse = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(1 / mse)
    }

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

@Suite(.serialized) struct PrecisionTests {
    @Test func bf16RoundingIsTorchsRoundToNearestEven() {
        // torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -2.5e-3], dtype=float32).to(bfloat16).view(int16)
        let values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -2.5e-3]
        #expect(values.map(floatToBF16Bits) == [0x3F80, 0x3F82, 0x3F81, 0xBB24])
        #expect(floatToBF16Bits(.nan) == 0x7FC0)
        #expect(floatToBF16Bits(.infinity) == 0x7F80)
        #expect(floatToHalfBits(1 + 0x1p-11) == 0x3C00 && floatToHalfBits(1e6) == 0x7C00)
    }

    @Test func aConvertedStoreServesMatricesSixteenBitAndRoundedValuesElsewhere() throws {
        let file = try SafeTensorsFile(url: ModelFixtures.root.appendingPathComponent("sana/sana-pipeline/transformer/diffusion_pytorch_model.safetensors"))
        let store = PrecisionWeights(file, precision: .bf16)
        let name = try #require(file.names.first { file.shape($0)?.count == 2 })
        guard case .half(let h) = try store.matrix(name) else { Issue.record("\(name) not served 16-bit"); return }
        let original = try file.weight(name), rounded = try store.weight(name)
        #expect(h.format == .bf16 && h.shape == original.shape && store.dtype(name) == "BF16")
        for i in 0..<original.count {
            #expect(h.pointer[i] == floatToBF16Bits(original.pointer[i]))
            #expect(rounded.pointer[i] == Float(bitPattern: UInt32(h.pointer[i]) << 16))
        }
        let fp32 = PrecisionWeights(file, precision: .fp32)
        guard case .float(let f) = try fp32.matrix(name) else { Issue.record("fp32 served 16-bit"); return }
        #expect(f.pointer == original.pointer)   // already fp32: the mapping itself
    }

    @Test(arguments: 0..<7)
    func bf16TextPipelinesStayCloseToFP32(index: Int) throws {
        let (name, folder, prompts, negative, seeds, steps, guidance, height, width, binning) = T2IFixtures.cases[index]
        let url = ModelFixtures.root.appendingPathComponent("sana/\(folder)")
        let requests = zip(prompts, seeds).map { TextRequest(prompt: $0, negativePrompt: negative, guidanceScale: guidance, seed: $1) }
        let fp32 = try TextToImagePipeline(url: url).generate(requests, steps: steps, height: height, width: width, binning: binning)
        let bf16 = try TextToImagePipeline(url: url, precision: .bf16).generate(requests, steps: steps, height: height, width: width, binning: binning)
        for i in requests.indices {
            let a = try #require(fp32[i].image).image, b = try #require(bf16[i].image).image
            let db = PrecisionFigures.psnr(a, b)
            print("precision bf16 vs fp32: \(name) image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 40, "\(name) image \(i): PSNR \(db) dB")
            #expect(a != b, "bf16 changed nothing: the conversion did not run")
        }
    }

    @Test func bf16ShippedModelsStayCloseToFP32() throws {
        let root = PrecisionFigures.root
        let scenes = root.appendingPathComponent("models/tiny-scenes")
        let r = [TextRequest(prompt: "a red circle above a blue square", guidanceScale: 4.5, seed: 1),
                 TextRequest(prompt: "a small green triangle left of a large yellow ring", guidanceScale: 4.5, seed: 2)]
        let a = try TextToImagePipeline(url: scenes).generate(r, steps: 20, height: 64, width: 64, binning: false)
        let b = try TextToImagePipeline(url: scenes, precision: .bf16).generate(r, steps: 20, height: 64, width: 64, binning: false)
        for i in r.indices {
            let db = PrecisionFigures.psnr(try #require(a[i].image).image, try #require(b[i].image).image)
            print("precision bf16 vs fp32: tiny-scenes 64x64 image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 40)
        }
        let shapes = root.appendingPathComponent("models/tiny-shapes")
        let s = [SampleRequest(label: 0, guidanceScale: 4, seed: 1), SampleRequest(label: 7, guidanceScale: 4, seed: 2)]
        let c = try DiffusionPipeline.load(shapes).generate(requests: s, steps: 24, sampler: .flowEuler, height: 64, width: 64)
        let d = try DiffusionPipeline.load(shapes, precision: .bf16).generate(requests: s, steps: 24, sampler: .flowEuler, height: 64, width: 64)
        for i in s.indices {
            let db = PrecisionFigures.psnr(try #require(c[i].image).image, try #require(d[i].image).image)
            print("precision bf16 vs fp32: tiny-shapes 64x64 image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 40)
        }
    }

    @Test(arguments: ["latent-ddim-cfg4", "pixel-flow-cfg3"])
    func bf16DiTStaysCloseToFP32(name: String) throws {
        let (folder, requests, steps, sampler, h, w) = try PipeFixtures.ditRun(name)
        let a = try DiffusionPipeline.load(folder).generate(requests: requests, steps: steps, sampler: sampler, height: h, width: w)
        let b = try DiffusionPipeline.load(folder, precision: .bf16).generate(requests: requests, steps: steps, sampler: sampler, height: h, width: w)
        for i in requests.indices {
            let x = try #require(a[i].image).image, y = try #require(b[i].image).image
            let db = PrecisionFigures.psnr(x, y)
            print("precision bf16 vs fp32: DiT \(name) image \(i): PSNR \(String(format: "%.1f", db)) dB")
            #expect(db >= 40)
            #expect(x != y)
        }
    }

    /// The transformers' weights take about half their fp32 bytes once converted (linear layers 16-bit; norms,
    /// biases and depthwise filters stay float32), the text encoders' likewise, and the autoencoders' decoders
    /// (3×3 and 1×1 convolutions 16-bit).
    @Test func convertedWeightsTakeLessMemory() throws {
        let root = PrecisionFigures.root
        for (label, url, build) in [
            ("tiny-scenes transformer", root.appendingPathComponent("models/tiny-scenes/transformer"), { (c: ComponentFolder, w: any WeightStore) in
                _ = try SanaTransformer2DModel(config: c.decodeConfig(SanaTransformer2DModel.Config.self), weights: w) }),
            ("tiny-shapes transformer", root.appendingPathComponent("models/tiny-shapes/transformer"), { (c: ComponentFolder, w: any WeightStore) in
                _ = try DiTTransformer2DModel(config: c.decodeConfig(DiTTransformer2DModel.Config.self), weights: w) }),
            ("pixart-sigma fixture transformer", ModelFixtures.root.appendingPathComponent("sana/pixart-sigma-pipeline/transformer"), { (c: ComponentFolder, w: any WeightStore) in
                _ = try PixArtTransformer2DModel(config: c.decodeConfig(PixArtTransformer2DModel.Config.self), weights: w) }),
            ("latent-dit fixture AutoencoderKL decoder", ModelFixtures.root.appendingPathComponent("latent-dit/vae"), { (c: ComponentFolder, w: any WeightStore) in
                _ = try AutoencoderKL(config: c.decodeConfig(AutoencoderKL.Config.self), weights: w, decoderOnly: true) }),
            ("sana fixture AutoencoderDC decoder", ModelFixtures.root.appendingPathComponent("sana/sana-pipeline/vae"), { (c: ComponentFolder, w: any WeightStore) in
                _ = try AutoencoderDC(config: c.decodeConfig(AutoencoderDC.Config.self), weights: w, decoderOnly: true) }),
        ] as [(String, URL, (ComponentFolder, any WeightStore) throws -> Void)] {
            let pipeline = try PipelineFolder(url: url.deletingLastPathComponent())
            let component = url.lastPathComponent == "vae" ? try #require(pipeline.vae) : pipeline.transformer
            let store = try #require(try component.openWeights(precision: .bf16) as? PrecisionWeights)
            try build(component, store)
            let bytes = store.convertedBytes
            let ratio = Double(bytes.held) / Double(bytes.stored)
            print("precision bf16: \(label): \(bytes.stored) bytes as stored, \(bytes.held) held (\(String(format: "%.2f", ratio))x)")
            // the tiny DC-AE fixture's norms, biases and depthwise filters (float32) are a fifth of its bytes
            #expect(bytes.stored > 0 && ratio < (label.contains("AutoencoderDC") ? 0.65 : 0.6), "\(label): \(ratio)")
        }
        // A converted pipeline skips its autoencoder's encoder (generation only decodes; converted tensors are resident).
        let sana = try TextToImagePipeline(url: ModelFixtures.root.appendingPathComponent("sana/sana-pipeline"), precision: .bf16)
        let plain = try TextToImagePipeline(url: ModelFixtures.root.appendingPathComponent("sana/sana-pipeline"))
        guard case .dc(let converted) = sana.vae, case .dc(let stored) = plain.vae else { Issue.record("no DC-AE"); return }
        #expect(!converted.hasEncoder && stored.hasEncoder)
    }
}
