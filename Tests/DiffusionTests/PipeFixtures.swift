import Foundation
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
