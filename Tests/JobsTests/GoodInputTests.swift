import Foundation
import TestSupport
import Testing
@testable import Jobs

@Test func labelPromptResolvesEveryDefaultFromTheModel() throws {
    let job = try Fixtures.decode("{\"prompt\":\"  Red CIRCLE \"}")
    #expect(job.id == "msg-1")
    #expect(job.model == "tiny-shapes")
    #expect(job.conditioning == .classLabel(id: 0, label: "red circle"))
    #expect(job.width == 64 && job.height == 64)
    #expect(job.steps == 20)
    #expect(job.guidance == 4)
    #expect(job.usesGuidance)
    #expect(job.sampler == "euler")
    #expect(job.count == 1)
    #expect(job.preview == false)
    #expect(job.progressEvery == 1)
    #expect(job.saveSeedAs == nil)
    #expect(job.deadline == nil)
    #expect(job.sizeClass == "small")
    #expect(job.replyTo == "amq.gen-1")
    #expect(job.correlationID == "c-1")
    guard case .value(let seed, generated: true) = job.seed else {
        Issue.record("expected a generated seed, got \(job.seed)")
        return
    }
    #expect(seed < 1 << 53)
}

@Test func labelSynonymsMapToTheirClass() throws {
    let job = try Fixtures.decode("{\"prompt\":\"tinca TINCA\",\"seed\":3}")
    #expect(job.conditioning == .classLabel(id: 3, label: "tench"))
    #expect(job.seed == .value(3, generated: false))
}

@Test func classIDIsUsedDirectly() throws {
    let job = try Fixtures.decode("{\"class_id\":2,\"width\":128,\"height\":64,\"guidance\":1}")
    #expect(job.conditioning == .classLabel(id: 2, label: nil))
    #expect(job.width == 128 && job.height == 64)
    #expect(!job.usesGuidance)
}

@Test func everyFieldGivenIsKept() throws {
    let body = """
    {"v":1,"id":"order-7:img.1_a","model":"tiny-text","prompt":"a red circle","negative_prompt":"blurry",
     "use_resolution_binning":false,"width":768,"height":512,"steps":50,"guidance":7.5,"sampler":"euler","seed_ref":"best.v2",
     "count":16,"preview":true,"progress_every":5,"save_seed_as":"keep-me_2","deadline":"2027-01-15T09:30:00.25+01:00"}
    """
    let props = JobProperties(messageID: "ignored", replyTo: "replies", correlationID: "corr", priority: 7, expiration: "60000")
    let job = try Job.decode(body: Array(body.utf8), properties: props, catalog: Fixtures.catalog, now: Fixtures.now)
    #expect(job.id == "order-7:img.1_a")
    #expect(job.model == "tiny-text")
    #expect(job.conditioning == .text(prompt: "a red circle", negativePrompt: "blurry"))
    #expect(job.width == 768 && job.height == 512)
    #expect(job.sizeClass == "large")
    #expect(job.steps == 50 && job.guidance == 7.5 && job.sampler == "euler")
    #expect(job.seed == .stored(name: "best.v2"))
    #expect(job.count == 16 && job.preview && job.progressEvery == 5)
    #expect(job.saveSeedAs == "keep-me_2")
    #expect(job.deadline == Date(timeIntervalSince1970: 1_800_000_000 + 1800.25))
    #expect(job.priority == 7 && job.expirationMs == 60000)
    #expect(job.useResolutionBinning == false)
    #expect(job.parametersText(index: 0, seed: 3).contains("Resolution binning: false"))
}

@Test func nullMeansAbsent() throws {
    let job = try Fixtures.decode("{\"v\":null,\"prompt\":\"blue square\",\"seed\":null,\"model\":null,\"count\":null}")
    #expect(job.model == "tiny-shapes" && job.count == 1)
    #expect(job.conditioning == .classLabel(id: 1, label: "blue square"))
}

@Test func idIsGeneratedWithoutBodyIdOrMessageID() throws {
    let job = try Fixtures.decode("{\"prompt\":\"red circle\"}", messageID: nil)
    #expect(job.id.hasPrefix("job-"))
    #expect(JobID.isValid(job.id))
}

@Test func seedTwoToThe64MinusOneRoundTripsExactly() throws {
    let max = "18446744073709551615"
    let job = try Fixtures.decode("{\"prompt\":\"red circle\",\"seed\":\(max),\"count\":2}")
    #expect(job.seed == .value(UInt64.max, generated: false))
    #expect(job.seeds(base: UInt64.max) == [UInt64.max, 0])
    // Through the request encoder and back.
    var request = JobRequest()
    request.v = 1
    request.prompt = "red circle"
    request.seed = UInt64.max
    let body = String(decoding: request.encodedBody(), as: UTF8.self)
    #expect(body == "{\"v\":1,\"prompt\":\"red circle\",\"seed\":\(max)}")
    #expect(try JobRequest.parse(body: request.encodedBody()) == request)
    // 2^53 + 1 is where JSONSerialization would have rounded.
    let near = try Fixtures.decode("{\"prompt\":\"red circle\",\"seed\":9007199254740993}")
    #expect(near.seed == .value(9_007_199_254_740_993, generated: false))
}

@Test func sizeClassIsTheSmallestBudgetThatFits() throws {
    let cases: [(Int, Int, String)] = [
        (256, 256, "small"), (8, 8, "small"), (256, 264, "medium"), (512, 512, "medium"),
        (1024, 1024, "large"), (1024, 512, "large"), (64, 1024, "small"),
    ]
    for (w, h, expected) in cases {
        let job = try Fixtures.decode("{\"model\":\"tiny-text\",\"prompt\":\"x\",\"width\":\(w),\"height\":\(h)}")
        #expect(job.sizeClass == expected, "\(w)x\(h)")
    }
    // Config order does not matter; the smallest fitting budget wins.
    let shuffled = Catalog(models: [], defaultModel: nil, sizeClasses: Fixtures.classes.reversed())
    #expect(shuffled.sizeClass(forPixels: 300 * 300)?.name == "medium")
    #expect(shuffled.sizeClass(forPixels: 1024 * 1024 + 1) == nil)
    #expect(shuffled.largestClass?.name == "large")
}

@Test func deadlineInTheFutureIsKeptAndExpiresLater() throws {
    let job = try Fixtures.decode("{\"prompt\":\"red circle\",\"deadline\":\"2027-01-15T08:00:10Z\"}")
    #expect(job.deadlineFailure(now: Fixtures.now) == nil)
    let failure = job.deadlineFailure(now: Fixtures.now.addingTimeInterval(11))
    #expect(failure?.code == .expired)
    #expect(failure?.retryable == false)
}

@Test func rfc3339AcceptsItsVariantsAndRejectsTheRest() {
    let base = 1_800_000_000.0
    #expect(RFC3339.parse("2027-01-15T08:00:00Z")?.timeIntervalSince1970 == base)
    #expect(RFC3339.parse("2027-01-15t08:00:00z")?.timeIntervalSince1970 == base)
    #expect(RFC3339.parse("2027-01-15 09:00:00+01:00")?.timeIntervalSince1970 == base)
    #expect(RFC3339.parse("2027-01-15T02:30:00-05:30")?.timeIntervalSince1970 == base)
    #expect(RFC3339.parse("2027-01-15T08:00:00.5Z")?.timeIntervalSince1970 == base + 0.5)
    #expect(RFC3339.parse("2028-02-29T00:00:00Z") != nil)
    for bad in ["2027-02-29T00:00:00Z", "2027-13-01T00:00:00Z", "2027-01-15T24:00:00Z", "2027-01-15T08:00Z",
                "2027-01-15", "2027-01-15T08:00:00.Z", "2027-01-15T08:00:00+0100", " 2027-01-15T08:00:00Z", ""] {
        #expect(RFC3339.parse(bad) == nil, "\(bad)")
    }
}

@Test func parametersTextNamesPromptAndSettings() throws {
    let job = try Fixtures.decode("{\"prompt\":\"red circle\",\"seed\":5}")
    #expect(job.parametersText(index: 0, seed: 5)
        == "red circle\nSteps: 20, Sampler: euler, CFG scale: 4.0, Seed: 5, Size: 64x64, Model: tiny-shapes, Class id: 0, Job: msg-1, Index: 0")
}

@Test func sideLimitsOfAClassPushAJobToTheNextOneOrRefuseIt() throws {
    let classes = [SizeClass(name: "small", maxPixels: 256 * 256, maxWidth: 256, maxHeight: 256),
                   SizeClass(name: "wide", maxPixels: 512 * 512)]
    let catalog = Catalog(models: [Fixtures.text], defaultModel: "tiny-text", sizeClasses: classes)
    func decode(_ w: Int, _ h: Int) throws(JobRejection) -> Job {
        try Job.decode(body: Array("{\"prompt\":\"x\",\"width\":\(w),\"height\":\(h)}".utf8),
                       properties: JobProperties(), catalog: catalog)
    }
    #expect(try decode(256, 256).sizeClass == "small")
    #expect(try decode(512, 64).sizeClass == "wide")
    let strict = Catalog(models: [Fixtures.text], defaultModel: "tiny-text", sizeClasses: [classes[0]])
    do {
        _ = try Job.decode(body: Array("{\"prompt\":\"x\",\"width\":512,\"height\":64}".utf8),
                           properties: JobProperties(), catalog: strict)
        Issue.record("512x64 was accepted by a class limited to 256 per side")
    } catch {
        #expect(error.failure.code == .tooLarge)
        #expect(error.failure.message.contains("512x64"))
    }
}

@Test func anEmptyReplyToCountsAsNone() throws {
    let body = Array("{\"prompt\":\"red circle\"}".utf8)
    let job = try Job.decode(body: body, properties: JobProperties(replyTo: ""), catalog: Fixtures.catalog, now: Fixtures.now)
    #expect(job.replyTo == nil)
    let named = try Job.decode(body: body, properties: JobProperties(replyTo: "q"), catalog: Fixtures.catalog, now: Fixtures.now)
    #expect(named.replyTo == "q")
}
