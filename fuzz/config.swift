// libFuzzer target: configuration parsing (DarkroomConfig.parse, Sources/Config, TOML through TOMLKit). The input
// is a darkroom.toml (first byte even) or DARKROOM_* variables, one NAME=value per line (first byte odd): a
// DarkroomConfig or a ConfigError naming a key or the source with a non-empty message, never a crash.
// Built and run by fuzz/run.sh (`make fuzz`).
import Config

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let asEnvironment = !bytes.isEmpty && bytes.removeFirst() & 1 == 1
    let text = String(decoding: bytes, as: UTF8.self)
    var environment: [String: String] = [:]
    if asEnvironment {
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
    }
    do {
        _ = try DarkroomConfig.parse(toml: asEnvironment ? nil : text, source: .file("fuzz.toml"), environment: environment)
    } catch let error as ConfigError {
        precondition(!error.description.isEmpty, "a config error without a message")
    } catch {
        preconditionFailure("parse threw something that is not a ConfigError: \(error)")
    }
    return 0
}
