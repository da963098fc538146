// The autoscaler's hands: `Systemctl` lists the running darkroom@<class>-<n> instances, and
// `ScaleCommand` runs darkroom-scale (ops/scale), which starts and stops instances and links per-class
// unit settings, so scaling has one implementation. Scaling a class to N means: instances 1...N run,
// no other; `ScaleChange` computes the same sets, for plans and tests.
import Core
import Foundation

/// Which instances to start and stop to bring one class to a count.
public struct ScaleChange: Sendable, Equatable {
    public var className: String
    public var start: [InstanceName]
    public var stop: [InstanceName]

    public var isEmpty: Bool { start.isEmpty && stop.isEmpty }

    /// To run exactly instances 1...count of the class: start the missing ones, stop those numbered
    /// above count. Idempotent: a class already there gives an empty change.
    public static func toReach(_ count: Int, className: String, running: [InstanceName]) throws -> ScaleChange {
        let mine = Set(running.filter { $0.className == className }.map(\.index))
        let wanted = count > 0 ? Set(1...count) : []
        let start = try wanted.subtracting(mine).sorted().map { try InstanceName(className: className, index: $0) }
        let stop = try mine.subtracting(wanted).sorted().map { try InstanceName(className: className, index: $0) }
        return ScaleChange(className: className, start: start, stop: stop)
    }
}

public struct SystemctlError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case systemctlFailed = "systemctl_failed", systemctlMissing = "systemctl_missing"
        case scaleFailed = "scale_failed", scaleCommandMissing = "scale_command_missing"
    }
    public let code: Code
    public let arguments: [String]
    public let status: Int32
    public let output: String

    public var message: String {
        "\(arguments.joined(separator: " ")) exited \(status): \(output)"
    }
}

public struct Systemctl: Sendable {
    public let executable: String

    public init(executable: String = "/usr/bin/systemctl") {
        self.executable = executable
    }

    /// `SYSTEMCTL` from the environment (a path, or a name looked up in PATH), as ops/scale reads it;
    /// else the first `systemctl` in PATH; else /usr/bin/systemctl.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Systemctl {
        let name = environment["SYSTEMCTL"].flatMap { $0.isEmpty ? nil : $0 } ?? "systemctl"
        if name.contains("/") { return Systemctl(executable: name) }
        for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = String(folder) + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return Systemctl(executable: candidate) }
        }
        return Systemctl()
    }

    /// Instances that are active, activating or reloading (a deactivating, draining instance no longer counts).
    public func runningInstances() throws -> [InstanceName] {
        let output = try run(["list-units", "--type=service", "--state=active,activating,reloading",
                              "--plain", "--no-legend", "--no-pager", "darkroom@*.service"])
        return Self.parseListUnits(output)
    }

    /// Running instances counted per class.
    public func runningCounts() throws -> [String: Int] {
        Dictionary(grouping: try runningInstances(), by: \.className).mapValues(\.count)
    }

    /// Unit names from `systemctl list-units --plain --no-legend` output (first column), keeping the
    /// darkroom@<class>-<n>.service ones.
    public static func parseListUnits(_ output: String) -> [InstanceName] {
        output.split(separator: "\n").compactMap { line in
            guard let unit = line.split(separator: " ", omittingEmptySubsequences: true).first,
                  unit.hasPrefix("darkroom@"), unit.hasSuffix(".service") else { return nil }
            return try? InstanceName(parsing: String(unit))
        }
    }

    func run(_ arguments: [String]) throws -> String {
        let (status, output) = try runProcess(executable, arguments, missingCode: .systemctlMissing)
        guard status == 0 else {
            throw SystemctlError(code: .systemctlFailed, arguments: [executable] + arguments, status: status,
                                 output: output)
        }
        return output
    }
}

/// darkroom-scale (ops/scale installed next to the binaries): `darkroom-scale [--dry-run] CLASS N`.
public struct ScaleCommand: Sendable {
    public let executable: String
    /// Variables added to the inherited environment (e.g. SYSTEMCTL for ops/scale).
    public let extraEnvironment: [String: String]

    public init(executable: String, extraEnvironment: [String: String] = [:]) {
        self.executable = executable
        self.extraEnvironment = extraEnvironment
    }

    /// darkroom-scale beside the running executable (<prefix>/bin), else ops/scale of the source
    /// checkout the executable was built in (.build/<config>/), else /usr/local/bin/darkroom-scale.
    public static func locate() -> ScaleCommand {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [
            exe.appendingPathComponent("darkroom-scale").path,
            exe.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("ops/scale").path,
            exe.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("ops/scale").path,
        ]
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            return ScaleCommand(executable: path)
        }
        return ScaleCommand(executable: "/usr/local/bin/darkroom-scale")
    }

    /// Brings `className` to `count` running workers; returns what darkroom-scale printed (one line
    /// per change). With `dryRun`, only says what it would do.
    public func scale(className: String, to count: Int, dryRun: Bool = false) throws -> String {
        let arguments = (dryRun ? ["--dry-run"] : []) + [className, String(count)]
        let (status, output) = try runProcess(executable, arguments, missingCode: .scaleCommandMissing,
                                              extraEnvironment: extraEnvironment)
        guard status == 0 else {
            throw SystemctlError(code: .scaleFailed, arguments: [executable] + arguments, status: status, output: output)
        }
        return output
    }
}

/// Runs a program to completion; its stdout and stderr together, trimmed.
func runProcess(_ executable: String, _ arguments: [String], missingCode: SystemctlError.Code,
                extraEnvironment: [String: String] = [:]) throws -> (Int32, String) {
    let process = Process()
    if !extraEnvironment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(extraEnvironment) { _, new in new }
    }
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do {
        try process.run()
    } catch {
        throw SystemctlError(code: missingCode, arguments: [executable] + arguments, status: -1, output: "\(error)")
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return (process.terminationStatus, output)
}
