import Config
import Diffusion
import Foundation
import Imaging
import Jobs
import TestSupport
import Testing
@testable import Worker

// Text jobs end to end: a real broker, an in-process worker serving a class-conditional and a text model at once,
// the PixArt-Σ fixture folder (Tests/DiffusionTests/Fixtures/sana/pixart-sigma-pipeline).
@Suite(.serialized) struct TextJobEndToEnd {
    /// A model_dir holding the DiT fixture and the PixArt-Σ fixture under plain names.
    static func modelDir(_ dir: String) throws -> String {
        let models = dir + "/models"
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: models + "/latent-dit", withDestinationPath: fixtureModels + "/latent-dit")
        try FileManager.default.createSymbolicLink(atPath: models + "/pixart", withDestinationPath: fixtureModels + "/sana/pixart-sigma-pipeline")
        return models
    }

    /// A client and an in-process worker serving latent-dit and pixart, 1.5 s batch window. `submit` publishes the
    /// test's jobs before the worker starts consuming, so jobs meant to share a batch are all queued when it fetches
    /// (publishing after start raced the batch window on a loaded CI machine).
    static func serveBoth(_ submit: (TestClient) async throws -> Void) async throws -> (TestClient, TestWorker) {
        let ns = uniqueNamespace(), dir = tempDir()
        var cfg = try testConfig(namespace: ns, state: dir, windowMs: 1500)
        cfg.modelDir = try modelDir(dir)
        cfg.models = ["latent-dit", "pixart"]
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        try await submit(client)
        return (client, try await TestWorker(cfg))
    }

    static func textJob(_ id: String, prompt: String, negative: String? = nil, seed: UInt64) -> String {
        let neg = negative.map { ",\"negative_prompt\":\"\($0)\"" } ?? ""
        return "{\"v\":1,\"id\":\"\(id)\",\"model\":\"pixart\",\"prompt\":\"\(prompt)\"\(neg),\"width\":32,\"height\":32,\"steps\":3,\"guidance\":4.5,\"seed\":\(seed)}"
    }

    @Test func textJobsWithDifferentPromptsBatchAndEachImageEqualsItsSoloRun() async throws {
        let (client, worker) = try await Self.serveBoth { client in
            try await client.submit(Self.textJob("t1", prompt: "a red circle", seed: 1), toClass: "tiny", id: "t1")
            try await client.submit(Self.textJob("t2", prompt: "Blue square ON green", negative: "dark", seed: 2), toClass: "tiny", id: "t2")
            try await client.submit(job("c1", prompt: "blue square", steps: 2, seed: 3), toClass: "tiny", id: "c1")   // the DiT, same worker
            try await client.submit(Self.textJob("bad", prompt: "x", seed: 1).replacingOccurrences(of: "\"steps\":3", with: "\"seed_ref\":\"s\",\"steps\":3")
                                        .replacingOccurrences(of: ",\"seed\":1", with: ""), toClass: "tiny", id: "bad")
        }
        #expect(await client.waitTerminal(["t1", "t2", "c1", "bad"], timeout: 180))
        try await worker.stop()

        let pipe = try TextToImagePipeline(url: URL(fileURLWithPath: fixtureModels + "/sana/pixart-sigma-pipeline"))
        var batches: [String] = []
        for (id, prompt, negative, seed) in [("t1", "a red circle", "", Int64(1)), ("t2", "Blue square ON green", "dark", Int64(2))] {
            let evs = client.events(of: id)
            #expect(evs.last?.kind == .completed, "\(id): \(evs.map(\.kind)) \(evs.last?.failure?.message ?? "")")
            batches += evs.compactMap(\.accepted).map(\.batch)
            guard let png = evs.compactMap(\.png).first else { Issue.record("\(id): no image"); continue }
            let image = try PNG.decode(png)
            let solo = try pipe.generate([TextRequest(prompt: prompt, negativePrompt: negative, guidanceScale: 4.5, seed: seed)],
                                         steps: 3, height: 32, width: 32, binning: true)
            #expect(image.width == 32 && image.height == 32)
            let soloPixels = solo[0].image?.rgb.pixels ?? []
            let differing = zip(image.pixels, soloPixels).filter { $0 != $1 }.count
            let worst = zip(image.pixels, soloPixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
            #expect(differing == 0 && image.pixels.count == soloPixels.count,
                    "\(id): the worker's image differs from its solo run in \(differing) values, by up to \(worst)")
            let text = image.text("parameters") ?? ""
            #expect(text.hasPrefix(prompt + "\n") && text.contains("Model: pixart") && text.contains("Sampler: dpmpp_2m"), "\(text)")
            if !negative.isEmpty { #expect(text.contains("Negative prompt: \(negative)")) }
        }
        #expect(batches.count == 2 && Set(batches).count == 1, "the two text jobs should share one batch: \(batches)")
        #expect(client.events(of: "c1").last?.kind == .completed)
        #expect(client.events(of: "bad").last?.failure?.code == .invalidRequest)
        await client.cleanUp()
    }

    /// `use_resolution_binning` in the job: exact-size jobs batch together, apart from binned ones; each image equals
    /// the pipeline's solo run with that setting, and the PNG records it.
    @Test func resolutionBinningFromTheJobSeparatesBatchesAndReachesTheImage() async throws {
        func binned(_ body: String, _ on: Bool) -> String {
            body.replacingOccurrences(of: "\"width\":32", with: "\"use_resolution_binning\":\(on),\"width\":32")
        }
        let cases: [(String, String, UInt64, Bool?)] = [("e1", "a red circle", 1, false), ("e2", "a yellow star", 2, false),
                                                        ("b1", "a red circle", 1, nil)]
        let (client, worker) = try await Self.serveBoth { client in
            for (id, prompt, seed, on) in cases {
                let body = Self.textJob(id, prompt: prompt, seed: seed)
                try await client.submit(on.map { binned(body, $0) } ?? body, toClass: "tiny", id: id)
            }
        }
        #expect(await client.waitTerminal(cases.map(\.0), timeout: 180))
        try await worker.stop()

        let pipe = try TextToImagePipeline(url: URL(fileURLWithPath: fixtureModels + "/sana/pixart-sigma-pipeline"))
        var batchOf: [String: String] = [:]
        for (id, prompt, seed, on) in cases {
            let evs = client.events(of: id)
            #expect(evs.last?.kind == .completed, "\(id): \(evs.map(\.kind)) \(evs.last?.failure?.message ?? "")")
            batchOf[id] = evs.compactMap(\.accepted).first?.batch
            guard let png = evs.compactMap(\.png).first else { Issue.record("\(id): no image"); continue }
            let image = try PNG.decode(png)
            let solo = try pipe.generate([TextRequest(prompt: prompt, guidanceScale: 4.5, seed: Int64(seed))],
                                         steps: 3, height: 32, width: 32, binning: on ?? true)
            #expect(image.pixels == solo[0].image?.rgb.pixels, "\(id): the worker's image is not the solo run's")
            let text = image.text("parameters") ?? ""
            #expect(text.contains("Resolution binning: \(on ?? true)"), "\(text)")
        }
        #expect(batchOf["e1"] != nil && batchOf["e1"] == batchOf["e2"] && batchOf["b1"] != batchOf["e1"], "\(batchOf)")
        let exact = try PNG.decode(try #require(client.events(of: "e1").compactMap(\.png).first))
        let binnedImage = try PNG.decode(try #require(client.events(of: "b1").compactMap(\.png).first))
        #expect(exact.pixels != binnedImage.pixels, "binning on and off gave the same image")
        await client.cleanUp()
    }

    /// examples/pika_producer.py sends a text job for the shipped tiny-scenes model; the worker answers with the image
    /// the pipeline makes alone for that prompt and seed (the PNG `parameters` name the prompt and the model).
    @Test func thePikaExampleSendsATextJobAndGetsTheTinyScenesImage() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        var cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        cfg.modelDir = repoRoot + "/models"
        cfg.models = ["tiny-scenes"]
        cfg.defaultModel = "tiny-scenes"
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let prompt = "a red circle above a blue square"
        let (status, out) = try await run("/usr/bin/python3", [repoRoot + "/examples/pika_producer.py", "--url", brokerURL, "--namespace", ns,
                                                         "--class", "big", "--model", "tiny-scenes", "--size", "64", "--seed", "3",
                                                         "--prompt", prompt, "--out", dir + "/pika", "--timeout", "120"])
        try await worker.stop()
        #expect(status == 0 && out.contains("completed"), "\(out)")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: dir + "/pika").filter { $0.hasSuffix(".png") }
        try #require(pngs.count == 1, "\(pngs)")
        let image = try PNG.decode(try Data(contentsOf: URL(fileURLWithPath: dir + "/pika/" + pngs[0])).map { $0 })
        let pipe = try TextToImagePipeline(url: URL(fileURLWithPath: repoRoot + "/models/tiny-scenes"))
        let solo = try pipe.generate([TextRequest(prompt: prompt, guidanceScale: 4.5, seed: 3)], steps: 20, height: 64, width: 64)
        #expect(image.width == 64 && image.height == 64 && image.pixels == solo[0].image?.rgb.pixels)
        let text = image.text("parameters") ?? ""
        #expect(text.hasPrefix(prompt + "\n") && text.contains("Model: tiny-scenes"), "\(text)")
        await client.cleanUp()
    }
}
