// `darkroom autoscale` end to end: queue depths from the real broker, scaling through darkroom-scale
// with a stand-in systemctl, the cool-down, and an unreachable broker.
import Autoscale
import Foundation
import TestSupport
import Testing

@Suite("darkroom autoscale against the broker")
struct AutoscaleCommandTests {
    /// Runs `darkroom autoscale ARGS`; its exit status and stdout + stderr.
    func autoscale(_ arguments: [String], environment: [String: String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: darkroomBinary())
        p.arguments = ["autoscale", "--config", repoRoot + "/config/darkroom.toml"] + arguments
        p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DARKROOM_") }
            .merging(environment) { _, new in new }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func aPassReadsQueueDepthsScalesThroughDarkroomScaleAndThenCoolsDown() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0..<9 { try await client.submit(job("as-\(i)"), toClass: "small", id: "as-\(i)") }

        // The stand-in systemctl that ops/tests/scale.sh uses too (this machine has no systemd as PID 1).
        let systemctl = repoRoot + "/ops/tests/stub-systemctl", active = dir + "/active", calls = dir + "/calls"
        try "darkroom@small-1.service\n".write(toFile: active, atomically: true, encoding: .utf8)
        try "".write(toFile: calls, atomically: true, encoding: .utf8)
        let env = [
            "SYSTEMCTL": systemctl, "STUB_STATE": active, "STUB_LOG": calls,
            "DARKROOM_SCALE": repoRoot + "/ops/scale", "DARKROOM_UNIT_DIR": dir + "/units", "DARKROOM_CLASS_DIR": dir + "/classes",
            "DARKROOM_BROKER_URLS": brokerURL, "DARKROOM_NAMESPACE": ns, "DARKROOM_AUTOSCALE_MAX_WORKERS": "6",
            "DARKROOM_AUTOSCALE_CLASSES_LARGE_MIN_WORKERS": "0",
        ]
        let statePath = dir + "/autoscale/state.json"
        let activeUnits = { (try? String(contentsOfFile: active, encoding: .utf8))?.split(separator: "\n").map(String.init).sorted() ?? [] }

        // A dry run prints every class's decision and changes nothing.
        let (dryStatus, dry) = try autoscale(["--state", statePath, "--dry-run"], environment: env)
        #expect(dryStatus == 0, "\(dry)")
        let dryLines = dry.split(separator: "\n").map(String.init)
        #expect(dryLines.contains("small: depth=9 consumers=0 workers=1 -> scale to 3 (backlog)"), "\(dry)")
        #expect(dryLines.contains("medium: depth=0 consumers=0 workers=0 -> scale to 1 (below_minimum)"), "\(dry)")
        #expect(dryLines.contains("large: depth=0 consumers=0 workers=0 -> hold (within_band)"), "\(dry)")
        #expect(activeUnits() == ["darkroom@small-1.service"])
        #expect(!FileManager.default.fileExists(atPath: statePath))

        // The real pass starts the instances through ops/scale and records the changes.
        let (status, out) = try autoscale(["--state", statePath], environment: env)
        #expect(status == 0, "\(out)")
        #expect(out.contains("start darkroom@small-3.service") && out.contains("small: 1 -> 3 workers"), "\(out)")
        #expect(activeUnits() == ["darkroom@medium-1.service", "darkroom@small-1.service", "darkroom@small-2.service",
                                  "darkroom@small-3.service"])
        let memory = try AutoscaleState.load(from: statePath)
        #expect(Set(memory.lastChange.keys) == ["small", "medium"])

        // More backlog right after: the cool-down holds the class.
        for i in 9..<18 { try await client.submit(job("as-\(i)"), toClass: "small", id: "as-\(i)") }
        let (againStatus, again) = try autoscale(["--state", statePath], environment: env)
        #expect(againStatus == 0, "\(again)")
        #expect(again.contains("small: depth=18 consumers=0 workers=3 -> hold (cooling_down)"), "\(again)")
        #expect(activeUnits().count == 4)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func anUnreachableBrokerIsAReadableErrorAndChangesNothing() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, out) = try autoscale(["--state", dir + "/state.json", "--broker", "amqp://guest:guest@127.0.0.1:1/"],
                                          environment: ["SYSTEMCTL": "/bin/false"])
        #expect(status != 0)
        #expect(out.contains("cannot reach the broker"), "\(out)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/state.json"))
    }
}
