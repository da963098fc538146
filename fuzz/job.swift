// libFuzzer target: job validation (JobRequest.parse + resolve, Sources/Jobs). Any body: a Job or a JobRejection
// with a code and a non-empty message, never a crash; an accepted request's encodedBody() parses back to the
// same request. The first byte picks the AMQP properties (message_id, expiration, priority) the job comes with.
// Built and run by fuzz/run.sh (`make fuzz`).
import Foundation
import Jobs

let catalog = Catalog(
    models: [
        ModelInfo(name: "shapes", kind: .classConditional, labels: ["red circle", "blue square"], numClasses: 2,
                  granularity: 8, defaultWidth: 64, defaultHeight: 64, defaultSteps: 24, defaultGuidance: 4,
                  defaultSampler: "flow_euler", samplers: ["flow_euler", "ddim"],
                  sizes: [ImageSize(width: 32, height: 32), ImageSize(width: 64, height: 64), ImageSize(width: 64, height: 32)]),
        ModelInfo(name: "scenes", kind: .text, granularity: 8, defaultWidth: 64, defaultHeight: 64, defaultSteps: 20,
                  defaultGuidance: 4.5, defaultSampler: "flow_euler", samplers: ["flow_euler"]),
    ],
    defaultModel: "shapes",
    sizeClasses: [SizeClass(name: "small", maxPixels: 256 * 256), SizeClass(name: "large", maxPixels: 1024 * 1024)])
let now = Date(timeIntervalSince1970: 1_800_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJob(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var body = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let pick = body.isEmpty ? 0 : body.removeFirst()
    let properties = JobProperties(messageID: pick & 1 == 0 ? "msg-1" : (pick & 2 == 0 ? nil : "bad id!"),
                                   replyTo: "amq.gen-1", correlationID: "c-1",
                                   priority: pick & 4 == 0 ? nil : pick >> 4,
                                   expiration: pick & 8 == 0 ? nil : String(pick >> 3))
    do throws(JobRejection) {
        let request = try JobRequest.parse(body: body, fallbackID: "fallback-1")
        do throws(JobRejection) {
            let again = try JobRequest.parse(body: request.encodedBody(), fallbackID: "fallback-1")
            var expected = request
            expected.v = request.v ?? 1    // encodedBody() writes the default "v": 1 when the body had none
            precondition(again == expected, "encodedBody() reads back as a different request")
        } catch {
            preconditionFailure("encodedBody() of an accepted request is rejected: \(error.failure.message)")
        }
        _ = try request.resolve(properties: properties, catalog: catalog, now: now, fallbackID: "fallback-1")
    } catch {
        precondition(!error.failure.message.isEmpty, "a rejection without a message")
        precondition(!error.jobID.isEmpty, "a rejection without a job id")
    }
    return 0
}
