import Config
import Foundation
import Testing

// [webhook] and [output]: the stores a worker offers, the secrets it holds, and how their files are read.
@Test func deliveryKeysBuildTheStoresAndReadTheirFiles() throws {
    let scratch = try Scratch()
    let out = scratch.dir + "/out"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let secrets = try scratch.write("hooks", "# shop\nshop-hooks = 0123456789abcdef0123\n\n other.one=ffffffffffffffffffff \n")
    let s3 = try scratch.write("s3.secret", "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG\n")
    let path = try scratch.write("d.toml", """
        [classes.small]
        max_pixels = 65536
        store = "s3"
        [classes.large]
        max_pixels = 1048576
        [webhook]
        secrets_file = "hooks"
        max_backoff = 4
        [output]
        store = "file"
        dir = "out"
        [output.s3]
        endpoint = "http://127.0.0.1:9000/"
        bucket = "results.darkroom"
        prefix = "runs/"
        credentials_file = "s3.secret"
        """)
    let c = try DarkroomConfig.load(path: path, environment: [:])
    #expect(c.defaultStore(forClass: "small") == .s3 && c.defaultStore(forClass: "large") == .file)
    #expect(c.output.dir == out)
    #expect(c.output.s3?.endpoint == "http://127.0.0.1:9000" && c.output.s3?.region == "us-east-1")
    #expect(c.output.s3?.addressing == .path && c.output.s3?.prefix == "runs/")
    let keys = try #require(try c.output.s3?.credentials())
    #expect(keys.accessKeyID == "AKIDEXAMPLE" && keys.secretAccessKey == "wJalrXUtnFEMI/K7MDENG")
    #expect(c.webhook.secretsFile == secrets && c.webhook.maxBackoff == 4 && c.webhook.maxAttempts == 5)
    #expect(try c.webhook.secrets() == ["shop-hooks": Array("0123456789abcdef0123".utf8), "other.one": Array("ffffffffffffffffffff".utf8)])
    _ = s3
}

@Test func aBadSecretsFileNamesTheLineButNeverTheSecret() throws {
    let scratch = try Scratch()
    for (text, words) in [
        ("a = short\n", ["line 1", "16 bytes"]),
        ("good = 0123456789abcdef0123\nno equals sign here\n", ["line 2", "name=secret"]),
        ("../x = 0123456789abcdef0123\n", ["line 1", "name"]),
        ("a = 0123456789abcdef0123\na = 0123456789abcdef0124\n", ["line 2", "twice"]),
    ] {
        let file = try scratch.write("hooks", text)
        var w = DarkroomConfig.builtInDefaults().webhook
        w.secretsFile = file
        do {
            _ = try w.secrets()
            Issue.record("accepted \(text)")
        } catch let e as ConfigError {
            for word in words { #expect(e.description.contains(word), "\(e)") }
            #expect(!e.description.contains("0123456789abcdef"), "\(e)")
        }
    }
}

@Test func systemdCredentialsAreTheDefaultSecretFiles() throws {
    let scratch = try Scratch()
    _ = try scratch.write("webhook-secrets", "a = 0123456789abcdef0123\n")
    let c = try DarkroomConfig.parse(toml: nil, source: .builtIn, environment: ["CREDENTIALS_DIRECTORY": scratch.dir])
    #expect(c.webhook.secretsFile == scratch.dir + "/webhook-secrets")
    #expect(c.output.s3 == nil && c.output.store == .inline)
}
