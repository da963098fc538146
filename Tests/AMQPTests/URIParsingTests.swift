import Testing
@testable import AMQP

struct URIParsingTests {
    struct Good: Sendable, CustomTestStringConvertible {
        let text: String
        let tls: Bool, host: String, port: Int, user: String, password: String, vhost: String
        var heartbeat = 60, frameMax = 131_072, timeoutMs = 10_000
        var testDescription: String { text }
    }

    static let good: [Good] = [
        Good(text: "amqp://guest:guest@127.0.0.1:5672/", tls: false, host: "127.0.0.1", port: 5672, user: "guest", password: "guest", vhost: "/"),
        Good(text: "amqp://localhost", tls: false, host: "localhost", port: 5672, user: "guest", password: "guest", vhost: "/"),
        Good(text: "amqps://broker.example", tls: true, host: "broker.example", port: 5671, user: "guest", password: "guest", vhost: "/"),
        Good(text: "AMQPS://u:p@h:6000/prod", tls: true, host: "h", port: 6000, user: "u", password: "p", vhost: "prod"),
        Good(text: "amqp://us%40er:p%3Ass%2Fw%25@host/%2F", tls: false, host: "host", port: 5672, user: "us@er", password: "p:ss/w%", vhost: "/"),
        Good(text: "amqp://u:p@host/my%2Fvhost", tls: false, host: "host", port: 5672, user: "u", password: "p", vhost: "my/vhost"),
        Good(text: "amqp://u:@host:1", tls: false, host: "host", port: 1, user: "u", password: "", vhost: "/"),
        Good(text: "amqp://u:p@[::1]:5673/v", tls: false, host: "::1", port: 5673, user: "u", password: "p", vhost: "v"),
        Good(text: "amqp://h/?heartbeat=2&frame_max=8192&connection_timeout=2500", tls: false, host: "h", port: 5672,
             user: "guest", password: "guest", vhost: "/", heartbeat: 2, frameMax: 8192, timeoutMs: 2500),
        Good(text: "amqp://h?heartbeat=0", tls: false, host: "h", port: 5672, user: "guest", password: "guest", vhost: "/", heartbeat: 0),
        Good(text: "  amqp://h:5672  ", tls: false, host: "h", port: 5672, user: "guest", password: "guest", vhost: "/"),
    ]

    @Test("well-formed URIs parse to the expected parts", arguments: good)
    func parsesGoodURIs(_ g: Good) throws {
        let u = try AMQPURI(g.text)
        #expect(u.tls == g.tls)
        #expect(u.host == g.host)
        #expect(u.port == g.port)
        #expect(u.user == g.user)
        #expect(u.password == g.password)
        #expect(u.vhost == g.vhost)
        #expect(u.heartbeat == g.heartbeat)
        #expect(u.frameMax == g.frameMax)
        #expect(u.connectionTimeoutMs == g.timeoutMs)
    }

    static let bad: [(String, String)] = [
        ("http://h/", "scheme"),
        ("h:5672", "scheme"),
        ("amqp://h:0/", "port"),
        ("amqp://h:70000/", "port"),
        ("amqp://h:abc/", "port"),
        ("amqp://a:b:c/", "at most one ':'"),
        ("amqp://[::1/", "']'"),
        ("amqp://h/a/b", "%2F"),
        ("amqp://u:p%zz@h/", "two hex digits"),
        ("amqp://h/?heartbeat=-1", "heartbeat"),
        ("amqp://h/?heartbeat=abc", "heartbeat"),
        ("amqp://h/?frame_max=100", "4096"),
        ("amqp://h/?connection_timeout=0", "connection_timeout"),
        ("amqp://h/?hearbeat=5", "unknown query parameter 'hearbeat'"),
        ("amqp://h/?cacertfile=/x.pem", "amqps"),
        ("amqp://:secret@h/", "user name"),
        ("amqp://h/#frag", "fragment"),
    ]

    @Test("malformed URIs fail with a reason that names the problem", arguments: bad)
    func rejectsBadURIs(_ text: String, _ mustMention: String) {
        do {
            _ = try AMQPURI(text)
            Issue.record("'\(text)' was accepted")
        } catch let e as AMQPError {
            #expect(e.code == .invalidURI)
            #expect(e.description.contains(mustMention), "\(e.description)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("passwords never appear in errors or descriptions")
    func passwordsAreMasked() throws {
        do {
            _ = try AMQPURI("amqp://bob:hunter2@h:99999/")
            Issue.record("accepted")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
            #expect("\(error)".contains("bob:***@h"))
        }
        let u = try AMQPURI("amqp://bob:hunter2@h/v")
        #expect(u.description == "amqp://bob:***@h:5672/v")
    }

    @Test("a URI list keeps its order for failover")
    func parsesListsInOrder() throws {
        let list = try AMQPURI.parseList("amqp://a:1/, amqp://b:2/ amqps://c/")
        #expect(list.map(\.server) == ["a:1", "b:2", "c:5671"])
        #expect(throws: AMQPError.self) { try AMQPURI.parseList(" , ") }
    }
}
