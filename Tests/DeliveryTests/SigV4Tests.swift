import Delivery
import Foundation
import Testing

// The Amazon S3 API Reference's Signature V4 examples ("Authenticating Requests: Using the Authorization
// Header (AWS Signature Version 4)", examples "GET Object" and "PUT Object"): same keys, date and headers,
// the documented signatures.
struct SigV4Tests {
    let signer = SigV4(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       region: "us-east-1")
    let date = Date(timeIntervalSince1970: 1_369_353_600)   // 2013-05-24T00:00:00Z

    @Test func getObjectExample() {
        let empty = Digest.hex(Digest.sha256(""))
        let auth = signer.authorization(method: "GET", path: "/test.txt", headers: [
            "Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9", "x-amz-content-sha256": empty,
            "x-amz-date": "20130524T000000Z",
        ], payloadHash: empty, date: date)
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObjectExampleWithAReservedCharacterInTheKey() {
        let body = Digest.hex(Digest.sha256("Welcome to Amazon S3."))
        #expect(body == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        #expect(SigV4.uriEncode("/test$file.text", path: true) == "/test%24file.text")
        let auth = signer.authorization(method: "PUT", path: SigV4.uriEncode("/test$file.text", path: true), headers: [
            "Date": "Fri, 24 May 2013 00:00:00 GMT", "Host": "examplebucket.s3.amazonaws.com",
            "x-amz-content-sha256": body, "x-amz-date": "20130524T000000Z", "x-amz-storage-class": "REDUCED_REDUNDANCY",
        ], payloadHash: body, date: date)
        #expect(auth.hasSuffix("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                               + "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"))
    }

    @Test func amzDateAndEncoding() {
        #expect(SigV4.amzDate(date) == "20130524T000000Z")
        #expect(SigV4.uriEncode("job:1/0 a.png", path: true) == "job%3A1/0%20a.png")
        #expect(SigV4.uriEncode("a/b", path: false) == "a%2Fb")
    }
}
