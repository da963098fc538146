// A job with count N gives the images its solo runs give (issue 13, "Batched ≠ solo"): image i of a count-N
// job with seed s has, pixel for pixel, the image of a count-1 job with seed s + i run alone — for N = 1...4,
// with the count jobs batched together, at every size the shipped tiny-shapes model serves.
import Foundation
import Imaging
import Jobs
import Testing
import TestSupport
@testable import Worker

@Suite struct CountInvarianceTests {
    static let sizes = [(32, 32), (64, 64), (64, 32)]

    func body(_ id: String, width: Int, height: Int, seed: Int, count: Int) -> String {
        "{\"v\":1,\"id\":\"\(id)\",\"prompt\":\"blue square\",\"width\":\(width),\"height\":\(height),\"steps\":3,"
            + "\"guidance\":4,\"seed\":\(seed),\"count\":\(count)}"
    }

    /// Runs `jobs` (id, body, class) on a worker with `maxBatch`; returns each job's decoded pixels in index order.
    func run(_ jobs: [(id: String, body: String, cls: String)], maxBatch: Int, windowMs: Int) async throws -> [String: [[UInt8]]] {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, maxBatch: maxBatch, windowMs: windowMs,
                                 model: (repoRoot + "/models", "tiny-shapes"))
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        for j in jobs { try await client.submit(j.body, toClass: j.cls, id: j.id) }   // queued before the worker starts
        let worker = try await TestWorker(cfg)
        #expect(await client.waitTerminal(jobs.map(\.id), timeout: 300))
        try await worker.stop()
        var out: [String: [[UInt8]]] = [:]
        for j in jobs {
            #expect(client.terminal(of: j.id)?.kind == .completed, "\(j.id): \(String(describing: client.terminal(of: j.id)))")
            let images = client.events(of: j.id).compactMap { e -> ImageEvent? in if case .image(let i) = e { return i } else { return nil } }
            out[j.id] = try images.sorted { $0.index < $1.index }.map { try PNG.decode($0.png).pixels }
        }
        await client.cleanUp()
        return out
    }

    @Test func aCountNJobGivesTheImagesOfItsSoloRunsAtEveryServedSize() async throws {
        var solos: [(id: String, body: String, cls: String)] = []
        var counts: [(id: String, body: String, cls: String)] = []
        for (w, h) in Self.sizes {
            let cls = w * h <= 1024 ? "tiny" : "big"
            for i in 0..<4 { solos.append(("solo-\(w)x\(h)-\(i)", body("solo-\(w)x\(h)-\(i)", width: w, height: h, seed: 70 + i, count: 1), cls)) }
            for n in 1...4 { counts.append(("count-\(w)x\(h)-\(n)", body("count-\(w)x\(h)-\(n)", width: w, height: h, seed: 70, count: n), cls)) }
        }
        let alone = try await run(solos, maxBatch: 1, windowMs: 0)          // every image in a batch of its own
        let batched = try await run(counts, maxBatch: 8, windowMs: 500)     // counts 1...4 of a size in one batch
        for (w, h) in Self.sizes {
            for n in 1...4 {
                let got = try #require(batched["count-\(w)x\(h)-\(n)"])
                #expect(got.count == n)
                for i in 0..<min(n, got.count) {
                    let want = try #require(alone["solo-\(w)x\(h)-\(i)"]?.first)
                    #expect(got[i] == want, "\(w)x\(h), count \(n), image \(i) differs from seed \(70 + i) alone")
                }
            }
        }
    }
}
