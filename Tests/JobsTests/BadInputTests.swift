import Foundation
import TestSupport
import Testing
@testable import Jobs


@Test func theBadInputTableHasAtLeastFortyCases() {
    #expect(badInputs.count >= 40)
    #expect(Set(badInputs.map(\.name)).count == badInputs.count)
}

@Test(arguments: badInputs)
func badInputIsRefusedWithItsCodeAndAReadableMessage(_ input: BadInput) {
    do {
        let job = try Job.decode(body: input.body, properties: JobProperties(messageID: input.messageID, replyTo: "r"),
                                 catalog: Fixtures.catalog, now: Fixtures.now)
        Issue.record("accepted: \(job)")
    } catch {
        #expect(error.failure.code == input.code, "message: \(error.failure.message)")
        #expect(error.isPoison == input.poison)
        #expect(error.failure.retryable == false)
        for word in input.mentions {
            #expect(error.failure.message.contains(word), "\"\(word)\" missing from: \(error.failure.message)")
        }
        #expect(JobID.isValid(error.jobID), "rejection id \(error.jobID)")
    }
}

/// The rejection's id, for the `failed` event.
private func rejectionID(_ body: String, messageID: String?) -> (id: String, poison: Bool)? {
    do {
        _ = try Fixtures.decode(body, messageID: messageID)
        return nil
    } catch {
        return (error.jobID, error.isPoison)
    }
}

@Test func rejectionCarriesTheBodysIdWhenValidElseTheMessageID() {
    #expect(rejectionID("{\"id\":\"job-9\",\"prompt\":\"red circle\",\"steps\":0}", messageID: "m-1")?.id == "job-9")
    #expect(rejectionID("{\"id\":\"job-9\",\"stepz\":1}", messageID: "m-1")?.id == "job-9")
    #expect(rejectionID("{\"prompt\":\"red circle\",\"steps\":0}", messageID: "m-5")?.id == "m-5")
    #expect(rejectionID("{\"id\":\"bad id\",\"prompt\":\"red circle\"}", messageID: nil)?.id.hasPrefix("job-") == true)
    #expect(rejectionID("{\"prompt\":\"red circle\"}", messageID: "bad id")?.id.hasPrefix("job-") == true)
    let poison = rejectionID("[]", messageID: "m-6")
    #expect(poison?.id == "m-6")
    #expect(poison?.poison == true)
}

@Test func catalogWithoutDefaultModelOrClassesRefusesClearly() {
    let noDefault = Catalog(models: [Fixtures.shapes], defaultModel: nil, sizeClasses: Fixtures.classes)
    do {
        _ = try Job.decode(body: Array("{\"prompt\":\"red circle\"}".utf8), properties: JobProperties(), catalog: noDefault)
        Issue.record("accepted without a model")
    } catch {
        #expect(error.failure.code == .unsupported)
        #expect(error.failure.message.contains("no \"model\""))
    }
    let noClasses = Catalog(models: [Fixtures.shapes], defaultModel: "tiny-shapes", sizeClasses: [])
    do {
        _ = try Job.decode(body: Array("{\"prompt\":\"red circle\"}".utf8), properties: JobProperties(), catalog: noClasses)
        Issue.record("accepted without size classes")
    } catch {
        #expect(error.failure.code == .unsupported)
        #expect(error.failure.message.contains("size classes"))
    }
}
