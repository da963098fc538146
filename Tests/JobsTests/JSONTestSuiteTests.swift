// The parsing corpus of JSONTestSuite (github.com/nst/JSONTestSuite, test_parsing/, MIT; data only, in
// Fixtures/JSONTestSuite with its LICENSE): every y_ file is accepted, every n_ file rejected, and every i_ file
// (where RFC 8259 lets a parser choose) gives the outcome docs/protocol.md's table documents for it.
import Foundation
import Testing
import TestSupport
@testable import Jobs

struct JSONTestSuiteTests {
    static let folder = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/JSONTestSuite")

    static func files(_ prefix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.sorted()
    }

    static func outcome(_ file: String) throws -> Result<JSONValue, JSONSyntaxError> {
        let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
        do throws(JSONSyntaxError) { return .success(try JSONParser.parse(bytes)) } catch { return .failure(error) }
    }

    @Test func everyYFileIsAccepted() throws {
        let files = try Self.files("y_")
        #expect(files.count == 95)
        for f in files {
            if case .failure(let e) = try Self.outcome(f) { Issue.record("\(f) rejected: \(e.message) at byte \(e.offset)") }
        }
    }

    @Test func everyNFileIsRejectedWithAPosition() throws {
        let files = try Self.files("n_")
        #expect(files.count == 188)
        for f in files {
            switch try Self.outcome(f) {
            case .success(let v): Issue.record("\(f) accepted as \(v.described)")
            case .failure(let e): #expect(e.offset >= 0 && !e.message.isEmpty, "\(f)")
            }
        }
    }

    /// docs/protocol.md's rows `| \`i_….json\` | accepted |` or `| \`i_….json\` | rejected | why |`.
    static func documented() throws -> [String: String] {
        let doc = try String(contentsOfFile: repoRoot + "/docs/protocol.md", encoding: .utf8)
        var rows: [String: String] = [:]
        for line in doc.split(separator: "\n") where line.hasPrefix("| `i_") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            rows[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells[1]
        }
        return rows
    }

    @Test func everyIFileHasTheOutcomeDocsProtocolDocuments() throws {
        let files = try Self.files("i_"), table = try Self.documented()
        #expect(files.count == 35)
        #expect(Set(table.keys) == Set(files), "documented \(table.count) of \(files.count)")
        for f in files {
            let got: String
            switch try Self.outcome(f) {
            case .success: got = "accepted"
            case .failure(let e): got = "rejected"; print("JSONTestSuite \(f): rejected: \(e.message) at byte \(e.offset)")
            }
            #expect(table[f] == got, "| `\(f)` | \(got) |")
        }
    }
}

extension JSONTestSuiteTests {
    /// docs/protocol.md: an out-of-range number the reader accepts is refused by the job field that reads it.
    @Test(arguments: ["\"seed\":18446744073709551616", "\"guidance\":1e999", "\"steps\":1e400", "\"seed\":-1e-400"])
    func hugeNumbersTheReaderKeepsAreRefusedByTheJobRules(field: String) throws {
        do throws(JobRejection) {
            _ = try Fixtures.decode("{\"v\":1,\"id\":\"n-1\",\"prompt\":\"red circle\",\(field)}")
            Issue.record("accepted \(field)")
        } catch {
            #expect(error.failure.code == .invalidRequest, "\(field): \(error.failure.message)")
            #expect(error.failure.message.contains(String(field.split(separator: "\"")[0])), "\(field): \(error.failure.message)")
        }
    }
}
