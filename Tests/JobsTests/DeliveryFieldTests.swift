import Foundation
import TestSupport
import Testing
@testable import Jobs

@Test func webhookAndOutputResolve() throws {
    let job = try Fixtures.decode("""
    {"prompt":"red circle","webhook":{"url":"https://hooks.example.com/dr?x=1","events":["failed","accepted","completed"],"secret_ref":"hook"},
     "output":{"store":"file"}}
    """)
    #expect(job.webhook == Webhook(url: "https://hooks.example.com/dr?x=1", events: [.accepted, .completed, .failed], secretRef: "hook"))
    #expect(job.store == .file)
}

@Test func webhookDefaultsAndLoopbackHTTP() throws {
    for url in ["http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]:9/h", "http://127.3.2.1/h"] {
        let job = try Fixtures.decode("{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"\(url)\",\"secret_ref\":\"hook\"}}")
        #expect(job.webhook?.events == [.image, .completed, .failed], "\(url)")
    }
    for host in ["127.0.0.1.example.com", "128.0.0.1", "localhost.example.com", "10.0.0.1"] {
        #expect(!WebhookURL.isLoopback(host), "\(host)")
    }
    #expect(try Fixtures.decode("{\"prompt\":\"red circle\"}").store == .inline)
    #expect(try Fixtures.decode("{\"prompt\":\"red circle\"}").webhook == nil)
}

@Test func classDefaultStoreAppliesUnlessTheJobSaysOtherwise() throws {
    var catalog = Fixtures.catalog
    catalog.delivery.classStores = ["small": .file]
    let props = JobProperties(messageID: "m")
    #expect(try Job.decode(body: Array("{\"prompt\":\"red circle\"}".utf8), properties: props, catalog: catalog).store == .file)
    #expect(try Job.decode(body: Array("{\"prompt\":\"red circle\",\"output\":{\"store\":\"inline\"}}".utf8), properties: props,
                           catalog: catalog).store == .inline)
}

@Test func deliveryFieldsSurviveEncodedBody() throws {
    let body = "{\"prompt\":\"red circle\",\"webhook\":{\"url\":\"https://h.example/x\",\"events\":[\"image\"],\"secret_ref\":\"hook\"},\"output\":{\"store\":\"file\"}}"
    let request = try JobRequest.parse(body: Array(body.utf8))
    let again = try JobRequest.parse(body: request.encodedBody())
    #expect(again.webhook == request.webhook && again.output == request.output)
    #expect(again.webhook?.events == ["image"])
    #expect(again.output?.store == "file")
}

@Test func storedImageEventsCarryWhereThePNGWentAndDecodeBack() throws {
    let s3 = ImageEvent(id: "j1", index: 1, seed: 18_446_744_073_709_551_615, width: 64, height: 32, png: [1, 2])
        .storing(StoredResult(store: .s3, location: "http://127.0.0.1:9/b/j1/1.png", key: "j1/1.png", sha256: "ab", bytes: 2))
    let out = s3.encoded()
    #expect(out.contentType == "application/json")
    #expect(out.headers[header: HeaderName.index] == .int(1))
    #expect(String(decoding: out.body, as: UTF8.self) == """
    {"v":1,"id":"j1","index":1,"seed":18446744073709551615,"width":64,"height":32,"store":"s3","url":"http://127.0.0.1:9/b/j1/1.png","key":"j1/1.png","sha256":"ab","bytes":2}
    """)
    #expect(try JobEvent.decode(out) == .image(s3))
    let file = ImageEvent(id: "j2", index: 0, seed: 3, width: 8, height: 8, png: [])
        .storing(StoredResult(store: .file, location: "/srv/out/j2/0.png", sha256: "cd", bytes: 9))
    #expect(String(decoding: file.encoded().body, as: UTF8.self).contains("\"store\":\"file\",\"path\":\"/srv/out/j2/0.png\""))
    #expect(try JobEvent.decode(file.encoded()) == .image(file))
    // Inline images are unchanged: the PNG is the body.
    let inline = ImageEvent(id: "j3", index: 0, seed: 3, width: 8, height: 8, png: [9, 9])
    #expect(inline.encoded().contentType == "image/png" && inline.encoded().body == [9, 9])
    #expect(try JobEvent.decode(inline.encoded()) == .image(inline))
}
