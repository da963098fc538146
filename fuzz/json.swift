// libFuzzer target: the contract's JSON reader (Sources/Jobs/JSON.swift). Any bytes: no crash, no hang; what it
// accepts, the writer writes back to text that parses to the same value, and writing that again gives the same
// bytes (a fixed point). Built and run by fuzz/run.sh (`make fuzz`).
@testable import Jobs

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    let written = JSONWriter.write(value)
    guard let again = try? JSONParser.parse(written) else {
        preconditionFailure("the writer's output does not parse: \(String(decoding: written, as: UTF8.self))")
    }
    precondition(again == value, "the written value reads back different")
    precondition(JSONWriter.write(again) == written, "writing is not a fixed point")
    return 0
}
