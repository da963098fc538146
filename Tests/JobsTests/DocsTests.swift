import Foundation
import TestSupport
import Testing
@testable import Jobs

/// The JSON examples of docs/protocol.md, read from the checkout.
private func docExamples() throws -> [String] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/protocol.md")
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.components(separatedBy: "```json\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
}

@Test func everyJSONExampleInTheProtocolPageIsAcceptedByTheCode() throws {
    let examples = try docExamples()
    #expect(examples.count >= 6)
    let docNow = RFC3339.parse("2026-11-29T00:00:00Z") ?? Date()
    var kindsSeen: Set<String> = []
    for example in examples {
        let body = Array(example.utf8)
        if example.contains("\"jobs_done\"") {
            #expect(try WorkerStatusReport.decode(body).jobsDone == 12)
            kindsSeen.insert("status report")
            continue
        }
        if example.contains("\"status\": true") {
            #expect(try ControlMessage.decode(body) == .status)
            kindsSeen.insert("status")
            continue
        }
        let kind: EventKind? =
            example.contains("\"worker\"") ? .accepted : example.contains("\"step\"") ? .progress
            : example.contains("\"sha256\"") ? .image
            : example.contains("\"timings_ms\"") ? .completed : example.contains("\"code\"") ? .failed : nil
        if let kind {
            let headers = [Header(HeaderName.event, .string(kind.rawValue)), Header(HeaderName.job, .string("order-17.a"))]
            let event = try JobEvent.decode(body: body, contentType: "application/json", headers: headers)
            #expect(event.kind == kind)
            kindsSeen.insert(kind.rawValue)
        } else if example.contains("\"cancel\"") {
            #expect(try ControlMessage.decode(body) == .cancel(jobID: "order-17.a"))
            kindsSeen.insert("cancel")
        } else {
            var catalog = Fixtures.catalog
            catalog.delivery.s3Store = true     // the example worker has a bucket
            let job = try Job.decode(body: body, properties: JobProperties(messageID: "m"), catalog: catalog, now: docNow)
            #expect(job.model == "tiny-shapes")
            kindsSeen.insert("job")
        }
    }
    #expect(kindsSeen == ["job", "accepted", "progress", "image", "completed", "failed", "cancel", "status", "status report"])
}
