import Foundation
import Testing
import Tensor
@testable import Diffusion
import Weights

/// Access to Tests/DiffusionTests/Fixtures (written by tools/reference/make_fixtures.py; see its README).
enum PipeFixtures {
    static var root: URL? { Bundle.module.url(forResource: "Fixtures", withExtension: nil) }

    static func url(_ relative: String) -> URL? {
        guard let r = root else { return nil }
        let u = r.appendingPathComponent(relative)
        return FileManager.default.fileExists(atPath: u.path) ? u : nil
    }

    static func file(_ relative: String) throws -> SafeTensorsFile? {
        guard let u = url(relative) else { return nil }
        return try SafeTensorsFile(url: u)
    }

    static func floats(_ f: SafeTensorsFile, _ name: String) throws -> [Float] {
        let v = try f.weight(name)
        return withExtendedLifetime(v) { Array(v.buffer) }
    }

    static func manifestCase(_ name: String) throws -> [String: JSONValue]? {
        guard let u = url("manifest.json"), let d = FileManager.default.contents(atPath: u.path) else { return nil }
        return try JSONValue.parse(d).objectValue?["cases"]?.objectValue?[name]?.objectValue
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        var m: Float = 0
        for i in a.indices { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    static func maxAbs(_ a: [Float]) -> Float { a.reduce(0) { max($0, abs($1)) } }

    /// A DiT fixture case of manifest.json as a run: its pipeline folder, requests, steps, sampler and size.
    static func ditRun(_ name: String) throws -> (folder: URL, requests: [SampleRequest], steps: Int, sampler: SamplerName, height: Int, width: Int) {
        let c = try #require(try manifestCase(name))
        let pipelineName = try #require(c["pipeline"]?.stringValue)
        let folder = try #require(url(pipelineName))
        let sampler = try #require(SamplerName(rawValue: c["sampler"]?.stringValue ?? ""))
        let labels = c["labels"]?.arrayValue?.compactMap(\.intValue) ?? [], seeds = c["seeds"]?.arrayValue?.compactMap(\.intValue) ?? []
        let requests = zip(labels, seeds).map { SampleRequest(label: $0, guidanceScale: c["guidance_scale"]?.doubleValue ?? 4, seed: Int64($1)) }
        let steps = try #require(c["num_inference_steps"]?.intValue)
        let h = try #require(c["image_height"]?.intValue), w = try #require(c["image_width"]?.intValue)
        return (folder, requests, steps, sampler, h, w)
    }
}

/// A fresh temporary folder, removed when the value is released.
final class TempDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-pipe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> URL { url.appendingPathComponent(name) }
}
