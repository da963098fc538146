import Foundation
import Testing
@testable import Jobs

@Test func parserKeepsNumberLiteralsAndMemberOrder() throws {
    let v = try JSONParser.parse(Array(#" {"b": 18446744073709551615, "a": [1.50, -0, 2e-3, true, null]} "#.utf8))
    #expect(v == .object([
        JSONMember("b", .number("18446744073709551615")),
        JSONMember("a", .array([.number("1.50"), .number("-0"), .number("2e-3"), .bool(true), .null])),
    ]))
}

@Test func parserDecodesEscapesAndSurrogatePairs() throws {
    let v = try JSONParser.parse(Array(#""\u00e9\ud83d\ude00\n\"\\\/""#.utf8))
    #expect(v == .string("é😀\n\"\\/"))
    for bad in [#""\ud83d""#, #""\ude00x""#, #""\x""#, "\"a\u{1}\"", "01", "1.", "-", "1e", "tru", "{\"a\" 1}"] {
        #expect(throws: JSONSyntaxError.self, "\(bad)") { try JSONParser.parse(Array(bad.utf8)) }
    }
}

@Test func writerOutputReadsBackThroughFoundation() throws {
    let original = "tab\t quote\" back\\ nl\n ctl\u{7} é 😀"
    let bytes = JSONWriter.write(.array([.string(original)]))
    let back = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String]
    #expect(back == [original])
    #expect(try JSONParser.parse(bytes) == .array([.string(original)]))
}
