// The instance names of darkroom@.service, the start/stop sets that bring a class to a count, and
// darkroom-scale (ops/scale) as the autoscaler runs it.
import Foundation
import Systemd
import Testing

@Suite("systemd instances and scaling")
struct InstanceAndScaleTests {
    @Test func scaleChangeStartsMissingAndStopsSurplusInstances() throws {
        let running = try ["small-1", "small-2", "small-5", "large-1"].map { try InstanceName(parsing: $0) }
        let change = try ScaleChange.toReach(3, className: "small", running: running)
        #expect(change.start.map(\.description) == ["small-3"])
        #expect(change.stop.map(\.description) == ["small-5"])
        let none = try ScaleChange.toReach(1, className: "large", running: running)
        #expect(none.isEmpty)
        let zero = try ScaleChange.toReach(0, className: "small", running: running)
        #expect(zero.stop.map(\.unitName) == ["darkroom@small-1.service", "darkroom@small-2.service",
                                              "darkroom@small-5.service"])
    }

    @Test(arguments: [
        ("small-1", "small", 1), ("large-12", "large", 12), ("x-large-2", "x-large", 2),
        ("darkroom@small-3.service", "small", 3),
    ])
    func instanceNamesCarryTheClassBeforeTheLastDash(text: String, className: String, index: Int) throws {
        let name = try InstanceName(parsing: text)
        #expect(name.className == className)
        #expect(name.index == index)
    }

    @Test(arguments: ["small", "small-", "-1", "small-0", "Small-1", "small-x", "sm all-1", "small-1a", ""])
    func malformedInstanceNamesAreRefusedWithAReadableError(text: String) {
        #expect(throws: InstanceNameError.self) { try InstanceName(parsing: text) }
        do {
            _ = try InstanceName(parsing: text)
        } catch {
            #expect("\(error)".contains("expected <class>-<n>"))
        }
    }

    @Test func listUnitsOutputYieldsTheWorkerInstances() {
        let output = """
        darkroom@small-1.service loaded active running Darkroom worker small-1
        darkroom@large-2.service loaded activating start Darkroom worker large-2
        darkroom-autoscale.service loaded active exited Darkroom autoscaler
        darkroom@bogus.service loaded active running nonsense
        """
        #expect(Systemctl.parseListUnits(output).map(\.description) == ["small-1", "large-2"])
    }

    @Test func scaleCommandRunsOpsScaleAndReportsWhatItWouldChange() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("ops/scale").path
        // /bin/true as systemctl: nothing is running, and nothing is changed (dry run).
        let command = ScaleCommand(executable: script, extraEnvironment: ["SYSTEMCTL": "/bin/true"])
        let output = try command.scale(className: "small", to: 2, dryRun: true)
        #expect(output.split(separator: "\n") == [
            "would start darkroom@small-1.service", "would start darkroom@small-2.service",
            "small: 0 -> 2 workers (dry run, nothing changed)",
        ])
        #expect(throws: SystemctlError.self) {
            try command.scale(className: "Not A Class", to: 1, dryRun: true)
        }
        do {
            _ = try ScaleCommand(executable: "/nonexistent/darkroom-scale").scale(className: "small", to: 1)
            Issue.record("a missing darkroom-scale must throw")
        } catch let error as SystemctlError {
            #expect(error.code == .scaleCommandMissing)
        }
    }
}
