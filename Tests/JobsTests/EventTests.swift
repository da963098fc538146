import Foundation
import TestSupport
import Testing
@testable import Jobs

private func text(_ e: OutgoingEvent) -> String { String(decoding: e.body, as: UTF8.self) }

/// Checks with an independent parser that the body is JSON.
private func isJSON(_ e: OutgoingEvent) -> Bool {
    (try? JSONSerialization.jsonObject(with: Data(e.body))) != nil
}

@Test func acceptedEncodesExactlyAsTheContract() throws {
    let e = AcceptedEvent(id: "job-1", worker: "w1", sizeClass: "small", batch: "w1-7", batchSize: 3, queuedMs: 12).encoded()
    #expect(text(e) == #"{"v":1,"id":"job-1","worker":"w1","class":"small","batch":"w1-7","batch_size":3,"queued_ms":12}"#)
    #expect(e.contentType == "application/json")
    #expect(e.headers == [Header("darkroom-event", .string("accepted")), Header("darkroom-job", .string("job-1"))])
    #expect(isJSON(e))
}

@Test func progressEncodesWithAndWithoutPreview() throws {
    let plain = ProgressEvent(id: "job-1", step: 5, steps: 20, elapsedMs: 250, etaMs: 750).encoded()
    #expect(text(plain) == #"{"v":1,"id":"job-1","step":5,"steps":20,"elapsed_ms":250,"eta_ms":750}"#)
    let withPreview = ProgressEvent(id: "job-1", step: 20, steps: 20, elapsedMs: 1000, etaMs: 0, preview: [1, 2, 3]).encoded()
    #expect(text(withPreview) == #"{"v":1,"id":"job-1","step":20,"steps":20,"elapsed_ms":1000,"eta_ms":0,"preview":"AQID"}"#)
    #expect(withPreview.headers[header: "darkroom-event"] == .string("progress"))
}

@Test func completedCarriesSeedsExactlyAndAllTimings() throws {
    let e = CompletedEvent(id: "job-1", seeds: [UInt64.max, 0],
                           timings: Timings(queue: 1, denoise: 2, decode: 3, encode: 4, total: 10)).encoded()
    #expect(text(e) == #"{"v":1,"id":"job-1","images":2,"seeds":[18446744073709551615,0],"timings_ms":{"queue":1,"denoise":2,"decode":3,"encode":4,"total":10}}"#)
    #expect(isJSON(e))
}

@Test func failedEscapesItsMessage() throws {
    let e = FailedEvent(id: "job-1", failure: JobFailure(.tooLarge, "say \"hi\"\n\\ \u{1}")).encoded()
    #expect(text(e) == #"{"v":1,"id":"job-1","code":"too_large","message":"say \"hi\"\n\\ \u0001","retryable":false}"#)
    #expect(isJSON(e))
    #expect(JobFailure(.internal, "x").retryable)
}

@Test func everyEventDecodesBackToItself() throws {
    let events: [JobEvent] = [
        .accepted(AcceptedEvent(id: "j", worker: "w", sizeClass: "medium", batch: "b-1", batchSize: 8, queuedMs: 0)),
        .progress(ProgressEvent(id: "j", step: 1, steps: 2, elapsedMs: 3, etaMs: 4)),
        .progress(ProgressEvent(id: "j", step: 2, steps: 2, elapsedMs: 3, etaMs: 0, preview: [0x89, 0x50, 0xFF])),
        .image(ImageEvent(id: "j", index: 3, seed: 1 << 63, width: 64, height: 32, png: [1, 2, 3])),
        .completed(CompletedEvent(id: "j", seeds: [7, 8, 9], timings: Timings(queue: 5, denoise: 6, decode: 7, encode: 8, total: 26))),
        .failed(FailedEvent(id: "j", failure: JobFailure(.cancelled, "cancelled by a control message"))),
    ]
    for event in events {
        #expect(try JobEvent.decode(event.encoded()) == event)
    }
    #expect(events.map(\.kind.isTerminal) == [false, false, false, false, true, true])
}

@Test func eventDecoderIgnoresUnknownFieldsButNotMissingOnes() throws {
    let headers = [Header("darkroom-event", .string("accepted")), Header("darkroom-job", .string("j"))]
    let extra = #"{"v":1,"id":"j","worker":"w","class":"c","batch":7,"batch_size":1,"queued_ms":2,"future":true}"#
    #expect(try JobEvent.decode(body: Array(extra.utf8), contentType: "application/json", headers: headers)
        == .accepted(AcceptedEvent(id: "j", worker: "w", sizeClass: "c", batch: "7", batchSize: 1, queuedMs: 2)))
    let missing = #"{"v":1,"id":"j","worker":"w","class":"c","batch":"b"}"#
    #expect(throws: JobEvent.DecodeError.self) {
        try JobEvent.decode(body: Array(missing.utf8), contentType: nil, headers: headers)
    }
    #expect(throws: JobEvent.DecodeError.self) {
        try JobEvent.decode(body: [], contentType: nil, headers: [Header("darkroom-event", .string("exploded"))])
    }
    let failed = [Header("darkroom-event", .string("failed")), Header("darkroom-job", .string("j"))]
    #expect(throws: JobEvent.DecodeError.self) {
        try JobEvent.decode(body: Array(#"{"v":1,"id":"j","code":"oops","message":"m","retryable":false}"#.utf8),
                            contentType: nil, headers: failed)
    }
}

@Test func rejectionBecomesAFailedEvent() {
    do {
        _ = try Fixtures.decode("{\"prompt\":\"red circle\",\"count\":99}")
        Issue.record("count 99 was accepted")
    } catch {
        let e = FailedEvent(error).encoded()
        #expect(e.jobID == "msg-1")
        #expect(text(e).hasPrefix(#"{"v":1,"id":"msg-1","code":"invalid_request","message":"field \"count\""#))
    }
}
