import Delivery
import Jobs
import Testing

struct WebhookSignatureTests {
    /// The signature is HMAC-SHA256 over "<timestamp>.<raw body>" under the named secret, as docs/protocol.md
    /// tells receivers to check; the AMQP headers come along as X-Darkroom-*.
    @Test func headersCarryTheSignatureOverTimestampAndBody() throws {
        let event = CompletedEvent(id: "job-1", seeds: [7], timings: Timings(queue: 1, denoise: 2, decode: 3, encode: 4, total: 10)).encoded()
        let secret = Array("0123456789abcdef0123".utf8)
        let headers = WebhookSignature.headers(for: event, delivery: "job-1.3", secret: secret, timestamp: 1_800_000_000)
        let h = Dictionary(uniqueKeysWithValues: headers)
        let expected = Digest.hex(Digest.hmacSHA256(key: secret, Array("1800000000.".utf8) + event.body))
        #expect(h["X-Darkroom-Signature"] == "sha256=" + expected)
        #expect(h["X-Darkroom-Timestamp"] == "1800000000")
        #expect(h["X-Darkroom-Delivery"] == "job-1.3")
        #expect(h["X-Darkroom-Event"] == "completed")
        #expect(h["X-Darkroom-Job"] == "job-1")
        #expect(h["Content-Type"] == "application/json")
        // Another secret, body or timestamp gives another signature.
        let other = WebhookSignature.headers(for: event, delivery: "job-1.3", secret: Array("another-secret-16b".utf8), timestamp: 1_800_000_000)
        #expect(Dictionary(uniqueKeysWithValues: other)["X-Darkroom-Signature"] != h["X-Darkroom-Signature"])
        let later = WebhookSignature.headers(for: event, delivery: "job-1.3", secret: secret, timestamp: 1_800_000_001)
        #expect(Dictionary(uniqueKeysWithValues: later)["X-Darkroom-Signature"] != h["X-Darkroom-Signature"])
    }

    @Test func imageEventsCarryTheirHeaders() {
        let event = ImageEvent(id: "j", index: 2, seed: 42, width: 64, height: 32, png: [1, 2, 3]).encoded()
        let h = Dictionary(uniqueKeysWithValues: WebhookSignature.headers(for: event, delivery: "j.1", secret: [1], timestamp: 1))
        #expect(h["Content-Type"] == "image/png")
        #expect(h["X-Darkroom-Index"] == "2")
        #expect(h["X-Darkroom-Seed"] == "42")
        #expect(h["X-Darkroom-Width"] == "64")
        #expect(h["X-Darkroom-Height"] == "32")
    }
}
