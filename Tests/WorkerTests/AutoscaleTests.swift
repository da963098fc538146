// The autoscaler's decisions, table by table: scale up on depth, the hysteresis band holds, the
// cool-down blocks, min/max clamp, zero depth falls to min, other hosts' consumers count as capacity.
// Also the instance names and the start/stop sets that bring a class to a count.
import Config
import Foundation
import Systemd
import Testing

struct AutoscaleRow: CustomTestStringConvertible, Sendable {
    let name: String
    let depth: Int
    let consumers: Int
    let running: Int
    var policy = ScalingPolicy(minWorkers: 1, maxWorkers: 6, targetDepthPerWorker: 4, hysteresis: 0.25,
                               cooldown: 300)
    /// Seconds since the class last changed; nil: never.
    var changedSecondsAgo: Double? = nil
    let expected: ScaleDecision.Verdict

    var testDescription: String { name }
}

private func scale(_ from: Int, _ to: Int, _ reason: ScaleAction.Reason) -> ScaleDecision.Verdict {
    .scale(ScaleAction(className: "small", from: from, to: to, reason: reason))
}

let autoscaleDecisionTable: [AutoscaleRow] = [
    AutoscaleRow(name: "deep queue scales up to what the depth needs", depth: 20, consumers: 2, running: 2,
                 expected: scale(2, 5, .backlog)),
    AutoscaleRow(name: "just above the band scales up by one", depth: 11, consumers: 2, running: 2,
                 expected: scale(2, 3, .backlog)),
    AutoscaleRow(name: "at the top of the band holds", depth: 10, consumers: 2, running: 2,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "at the bottom of the band holds", depth: 6, consumers: 2, running: 2,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "below the band scales down to what the depth needs", depth: 5, consumers: 3, running: 3,
                 expected: scale(3, 2, .idle)),
    AutoscaleRow(name: "zero depth scales down to min", depth: 0, consumers: 4, running: 4,
                 expected: scale(4, 1, .idle)),
    AutoscaleRow(name: "zero depth with min 0 stops the class", depth: 0, consumers: 2, running: 2,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: scale(2, 0, .idle)),
    AutoscaleRow(name: "zero depth at min holds", depth: 0, consumers: 1, running: 1,
                 expected: .hold(.atMinimum)),
    AutoscaleRow(name: "idle class with min 0 and nothing queued holds", depth: 0, consumers: 0, running: 0,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "a job for a stopped class starts one worker", depth: 1, consumers: 0, running: 0,
                 policy: ScalingPolicy(minWorkers: 0, maxWorkers: 6, targetDepthPerWorker: 4),
                 expected: scale(0, 1, .backlog)),
    AutoscaleRow(name: "huge depth is clamped to max", depth: 1000, consumers: 2, running: 2,
                 expected: scale(2, 6, .backlog)),
    AutoscaleRow(name: "at max with backlog holds", depth: 1000, consumers: 6, running: 6,
                 expected: .hold(.atMaximum)),
    AutoscaleRow(name: "cool-down blocks a scale up", depth: 20, consumers: 2, running: 2, changedSecondsAgo: 120,
                 expected: .hold(.coolingDown)),
    AutoscaleRow(name: "cool-down blocks a scale down", depth: 0, consumers: 4, running: 4, changedSecondsAgo: 299,
                 expected: .hold(.coolingDown)),
    AutoscaleRow(name: "after the cool-down the change goes ahead", depth: 20, consumers: 2, running: 2,
                 changedSecondsAgo: 300, expected: scale(2, 5, .backlog)),
    AutoscaleRow(name: "below min is raised at once, cool-down or not", depth: 0, consumers: 0, running: 0,
                 changedSecondsAgo: 10, expected: scale(0, 1, .belowMinimum)),
    AutoscaleRow(name: "above max is lowered at once, cool-down or not", depth: 50, consumers: 8, running: 8,
                 changedSecondsAgo: 10, expected: scale(8, 6, .aboveMaximum)),
    AutoscaleRow(name: "consumers on other hosts count as capacity", depth: 20, consumers: 5, running: 1,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "other hosts' consumers reduce what is added here", depth: 28, consumers: 5, running: 1,
                 expected: scale(1, 3, .backlog)),
    AutoscaleRow(name: "local workers still starting count as capacity", depth: 12, consumers: 1, running: 3,
                 expected: .hold(.withinBand)),
    AutoscaleRow(name: "no hysteresis scales on any excess", depth: 9, consumers: 2, running: 2,
                 policy: ScalingPolicy(minWorkers: 1, maxWorkers: 6, targetDepthPerWorker: 4, hysteresis: 0),
                 expected: scale(2, 3, .backlog)),
    AutoscaleRow(name: "an unusable policy changes nothing", depth: 100, consumers: 1, running: 1,
                 policy: ScalingPolicy(minWorkers: 3, maxWorkers: 2, targetDepthPerWorker: 4),
                 expected: .hold(.invalidPolicy)),
]

@Suite("autoscaler")
struct AutoscaleTests {
    static let now = Date(timeIntervalSince1970: 1_795_867_200)

    @Test(arguments: autoscaleDecisionTable)
    func decision(row: AutoscaleRow) {
        let config = AutoscaleConfig(defaults: ScalingPolicy(), classes: ["small": row.policy])
        let lastChange = row.changedSecondsAgo.map { ["small": Self.now.addingTimeInterval(-$0)] } ?? [:]
        let decisions = AutoscalePlanner.decide(
            classes: [ClassObservation(className: "small", depth: row.depth, consumers: row.consumers)],
            current: ["small": row.running], config: config, lastChange: lastChange, now: Self.now)
        #expect(decisions.count == 1)
        #expect(decisions.first?.verdict == row.expected)
        #expect(decisions.first?.current == row.running)
    }

    @Test func planListsOnlyChangesPerClassWithTheirOwnPolicies() {
        let config = AutoscaleConfig(
            defaults: ScalingPolicy(minWorkers: 1, maxWorkers: 2, targetDepthPerWorker: 10),
            classes: ["large": ScalingPolicy(minWorkers: 0, maxWorkers: 3, targetDepthPerWorker: 1)])
        let actions = AutoscalePlanner.plan(
            classes: [
                ClassObservation(className: "small", depth: 12, consumers: 1),  // within band for target 10
                ClassObservation(className: "large", depth: 5, consumers: 1),   // needs 5, max 3
                ClassObservation(className: "medium", depth: 100, consumers: 1), // default policy: max 2
            ],
            current: ["small": 1, "large": 1, "medium": 1], config: config,
            lastChange: ["medium": Self.now.addingTimeInterval(-3600)], now: Self.now)
        #expect(actions == [
            ScaleAction(className: "large", from: 1, to: 3, reason: .backlog),
            ScaleAction(className: "medium", from: 1, to: 2, reason: .backlog),
        ])
    }

    @Test func repeatedPlansConvergeWithoutFlapping() {
        // Apply each plan as if systemd did it; with a steady depth the count settles and stays.
        let config = AutoscaleConfig(defaults: ScalingPolicy(minWorkers: 1, maxWorkers: 8,
                                                                  targetDepthPerWorker: 4, cooldown: 0))
        var running = 1
        var history: [Int] = []
        for _ in 0..<6 {
            let actions = AutoscalePlanner.plan(
                classes: [ClassObservation(className: "small", depth: 18, consumers: running)],
                current: ["small": running], config: config, lastChange: [:], now: Self.now)
            if let action = actions.first { running = action.to }
            history.append(running)
        }
        #expect(history == [5, 5, 5, 5, 5, 5])
    }

    @Test func policyProblemsNameTheKeys() {
        #expect(ScalingPolicy().problems().isEmpty)
        let bad = ScalingPolicy(minWorkers: -1, maxWorkers: -2, targetDepthPerWorker: 0, hysteresis: 1.5,
                                cooldown: -1).problems()
        #expect(bad.count == 5)
        #expect(bad.contains { $0.hasPrefix("min_workers") })
        #expect(bad.contains { $0.hasPrefix("target_depth_per_worker") })
    }

    @Test func stateRoundTripsThroughItsFileAndRecordsChanges() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("darkroom-autoscale-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("autoscale.json").path
        #expect(try AutoscaleState.load(from: path) == AutoscaleState())
        var state = AutoscaleState()
        state.record([ScaleAction(className: "small", from: 1, to: 2, reason: .backlog)], at: Self.now)
        try state.save(to: path)
        #expect(try AutoscaleState.load(from: path).lastChange == ["small": Self.now])
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: AutoscaleStateError.self) { try AutoscaleState.load(from: path) }
    }

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
            #expect(error.code == "scale_command_missing")
        }
    }
}

/// A stand-in systemctl (this machine has no systemd as PID 1): `list-units` prints the units listed in
/// the state file that match the pattern, start/stop edit the file; every call is logged.
private let stubSystemctl = """
    #!/usr/bin/env bash
    state=${STUB_STATE:?}; log=${STUB_LOG:?}
    echo "$*" >>"$log"
    case "$1" in
      list-units)
        pattern=${!#}
        while read -r unit; do
          [ -n "$unit" ] || continue
          case "$unit" in $pattern) echo "$unit loaded active running Darkroom worker" ;; esac
        done <"$state" ;;
      start) shift; for u in "$@"; do [ "$u" = --no-block ] || grep -qx "$u" "$state" || echo "$u" >>"$state"; done ;;
      stop) shift; for u in "$@"; do [ "$u" = --no-block ] || { grep -vx "$u" "$state" >"$state.new" || true; mv "$state.new" "$state"; }; done ;;
      daemon-reload|enable|disable) ;;
      *) echo "stub systemctl: unexpected $*" >&2; exit 1 ;;
    esac

    """

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

        let systemctl = dir + "/systemctl", active = dir + "/active", calls = dir + "/calls"
        try stubSystemctl.write(toFile: systemctl, atomically: true, encoding: .utf8)
        #expect(chmod(systemctl, 0o755) == 0)
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
