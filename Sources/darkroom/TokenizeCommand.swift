import ArgumentParser
import Foundation
import Text

/// `darkroom tokenize --model DIR "text"`: a prompt's ids and pieces, as the model's tokenizer gives them.
struct TokenizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print a prompt's token ids and pieces (special tokens included, no padding).")

    @OptionGroup var local: LocalOptions
    @Option(name: .long, help: "A pipeline folder (its tokenizer/), a tokenizer folder (tokenizer.json or spiece.model), such a file, or a model name under model_dir.")
    var model: String?
    @Flag(name: .long, help: "One JSON object {\"ids\": [...], \"tokens\": [...]} instead of a table.")
    var json = false
    @Flag(name: .long, help: "Leave out the special tokens the tokenizer's template adds.")
    var noSpecialTokens = false
    @Argument(help: "The text to tokenize.")
    var text: String

    func run() async throws {
        let cfg = try local.load()
        let (_, path) = LocalModel.locate(model, config: cfg)
        let tokenizer = try Self.open(path)
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecialTokens)
        let tokens = ids.map { tokenizer.token($0) ?? "?" }
        if json {
            struct Output: Encodable { let ids: [Int]; let tokens: [String] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(Output(ids: ids, tokens: tokens)), as: UTF8.self))
            return
        }
        print("\(ids.count) tokens (\(tokenizer.modelType), \(tokenizer.name))")
        for (id, token) in zip(ids, tokens) { print("\(id)\t\(String(reflecting: token))") }
    }

    /// The tokenizer of a pipeline folder (`tokenizer/`), of a tokenizer folder, or a tokenizer.json file.
    static func open(_ path: String) throws -> Tokenizer {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        do {
            if url.pathExtension == "json" { return try Tokenizer(file: url) }
            if url.pathExtension == "model" { return try Tokenizer(sentencePiece: url) }
            for sub in ["tokenizer/", ""] where hasTokenizer(url.appendingPathComponent(sub)) {
                return try Tokenizer(folder: url.appendingPathComponent(sub))
            }
        } catch {
            throw CLIError(oneLine("cannot load the tokenizer in \(path): \(error)"))
        }
        throw CLIError("no tokenizer at \(path): expected tokenizer/ (a pipeline folder) or a folder with tokenizer.json or spiece.model, or such a file")
    }

    /// Whether `folder` holds tokenizer.json or spiece.model.
    static func hasTokenizer(_ folder: URL) -> Bool {
        ["tokenizer.json", "spiece.model"].contains { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
    }
}

/// The text part of `models inspect`: the tokenizer and text encoder of a pipeline folder, when it has them.
enum TextReport {
    static func lines(_ path: String) throws -> [String] {
        let url = URL(fileURLWithPath: path)
        var out: [String] = []
        if TokenizeCommand.hasTokenizer(url.appendingPathComponent("tokenizer")) {
            let t = try TokenizeCommand.open(path)
            let pad = t.padID.map { "pad id \($0) (\(t.token($0) ?? "?")), padding \(t.paddingSide.rawValue)" } ?? "no pad token"
            out.append("tokenizer: \(t.modelType) from tokenizer/\(t.name), \(t.vocabSize) ids (\(t.addedTokens.count) added tokens), "
                       + "\(t.specialTokenCount) special token(s) per prompt, \(pad)")
        }
        let folder = url.appendingPathComponent("text_encoder")
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) {
            let e: TextEncoder
            do { e = try TextEncoder(folder: folder) } catch {
                throw CLIError(oneLine("cannot load text_encoder in \(path): \(error)"))
            }
            var shape = ""
            switch e.model {
            case .gemma2(let g):
                let c = g.config
                shape = "\(c.layers) layers, hidden \(c.hiddenSize), \(c.heads) heads (\(c.kvHeads) KV) x \(c.headDim), "
                    + "intermediate \(c.intermediateSize), sliding window \(c.slidingWindow), vocab \(c.vocabSize)"
            case .t5(let t):
                let c = t.config
                shape = "\(c.layers) layers, d_model \(c.dModel), \(c.heads) heads x \(c.dKV), d_ff \(c.dFF), vocab \(c.vocabSize)"
            }
            out.append("text_encoder: \(e.architecture), \(ModelReport.summary(of: e.weights))")
            out.append("  \(shape); computed in float32 from \(e.storedDType) weights kept as stored")
        }
        return out
    }
}
