import Foundation
import Testing
import Weights
@testable import Text

/// Truncated or corrupt tokenizer.json and encoder shards give one-line errors naming the file, never a crash.
@Suite struct BadFilesTests {
    func scratchCopy(_ name: String, from root: URL) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("text-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let dst = dir.appendingPathComponent(name)
        try FileManager.default.copyItem(at: root.appendingPathComponent(name), to: dst)
        return dst
    }

    func oneLine(_ error: any Error, naming file: String) {
        let text = String(describing: error)
        #expect(text.contains(file), "\(text) does not name \(file)")
        #expect(!text.contains("\n"), "\(text) is not one line")
    }

    static func edit(_ label: String, _ s: String) -> String {
        switch label {
        case "truncated": return String(s.prefix(s.count / 2))
        case "empty": return ""
        case "not an object": return "[1, 2]"
        case "unknown model": return s.replacingOccurrences(of: "\"type\": \"BPE\"", with: "\"type\": \"WordPiece\"")
        case "merge outside the vocab":
            return s.replacingOccurrences(of: "[\n        \"i\",\n        \"n\"\n      ]", with: "[\"i\", \"nowhere\"]")
        default: return s.replacingOccurrences(of: "\"model\":", with: "\"modell\":")
        }
    }

    @Test(arguments: ["truncated", "empty", "not an object", "unknown model", "merge outside the vocab", "no model"])
    func corruptTokenizerJSON(label: String) throws {
        let folder = try scratchCopy("gemma", from: TextFixtures.tokenizers)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let file = folder.appendingPathComponent("tokenizer.json")
        let original = try String(contentsOf: file, encoding: .utf8)
        let edited = Self.edit(label, original)
        #expect(edited != original, "\(label): the edit changed nothing")
        try edited.write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try Tokenizer(folder: folder)
            Issue.record("\(label): loaded without an error")
        } catch {
            oneLine(error, naming: "tokenizer.json")
        }
    }

    @Test(arguments: [100_000, 40, 0])
    func truncatedSentencePieceModel(keep: Int) throws {
        let folder = try scratchCopy("t5-spiece", from: TextFixtures.tokenizers)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let model = folder.appendingPathComponent("spiece.model")
        try Data(try Data(contentsOf: model).prefix(keep)).write(to: model)
        do {
            _ = try Tokenizer(folder: folder)
            Issue.record("loaded a spiece.model cut to \(keep) bytes")
        } catch {
            oneLine(error, naming: "spiece.model")
        }
    }

    @Test func missingTokenizerFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("text-none-\(UUID().uuidString)")
        #expect(throws: TextError.self) { try Tokenizer(folder: dir) }
    }

    @Test(arguments: [1_000, 8, 3])
    func truncatedShard(keep: Int) throws {
        let folder = try scratchCopy("gemma2-bf16", from: EncoderFixtures.root)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let shard = folder.appendingPathComponent("model-00002-of-00005.safetensors")
        let bytes = try Data(contentsOf: shard)
        try bytes.prefix(keep).write(to: shard)
        do {
            _ = try TextEncoder(folder: folder)
            Issue.record("loaded a shard cut to \(keep) bytes")
        } catch {
            oneLine(error, naming: "model-00002-of-00005.safetensors")
        }
    }

    @Test func corruptIndexAndConfig() throws {
        let folder = try scratchCopy("t5-f16", from: EncoderFixtures.root)
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        try Data("{\"weight_map\": ".utf8).write(to: index)
        do { _ = try TextEncoder(folder: folder); Issue.record("loaded a truncated index") } catch {
            oneLine(error, naming: "model.safetensors.index.json")
        }
        let config = folder.appendingPathComponent("config.json")
        try Data("{\"architectures\": [\"BertModel\"]}".utf8).write(to: config)
        do { _ = try TextEncoder(folder: folder); Issue.record("loaded a BertModel config") } catch {
            oneLine(error, naming: "config.json")
        }
    }
}
