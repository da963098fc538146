// Paths: machine-dependent defaults (shipped model folder, worker id, systemd credential, memory, cores).
import Foundation

enum Paths {
    /// The shipped models folder: `<prefix>/share/darkroom/models` when the executable is installed as
    /// `<prefix>/bin/<tool>`, else the `models` folder of the checkout the executable was built in
    /// (found by walking up to a folder holding `Package.swift` and `config/darkroom.toml`), else
    /// `/usr/share/darkroom/models`.
    static func builtInModelDir(executablePath: String? = currentExecutablePath()) -> String {
        let fm = FileManager.default
        if let exe = executablePath {
            let binDir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            let installed = binDir.deletingLastPathComponent().appendingPathComponent("share/darkroom/models").path
            if fm.fileExists(atPath: installed) { return installed }
            var dir = binDir
            while dir.path != "/" && !dir.path.isEmpty {
                if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
                   fm.fileExists(atPath: dir.appendingPathComponent("config/darkroom.toml").path) {
                    return dir.appendingPathComponent("models").path
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        return "/usr/share/darkroom/models"
    }

    static func currentExecutablePath() -> String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath ?? CommandLine.arguments.first
    }

    /// `<hostname>-<pid>`, restricted to the job-id charset.
    static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName
        let clean = String(host.map { isIDChar($0) ? $0 : "-" }.prefix(100))
        return (clean.isEmpty ? "worker" : clean) + "-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// `$CREDENTIALS_DIRECTORY/<name>` when systemd passed it (LoadCredential=broker:..., broker-ca.pem:...).
    static func systemdCredential(environment: [String: String], name: String = "broker") -> String? {
        guard let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty else { return nil }
        let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static func physicalMemory() -> UInt64 { ProcessInfo.processInfo.physicalMemory }
    static func activeProcessorCount() -> Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `[A-Za-z0-9._:-]`, the contract's id charset.
    static func isIDChar(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == ":" || c == "-")
    }

    /// A path from the config file is relative to the file's folder; others are kept as given.
    static func resolve(_ path: String, relativeTo source: ConfigSource) -> String {
        guard case .file(let file) = source, !path.hasPrefix("/") else { return path }
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return (dir.isEmpty ? "." : dir) + "/" + path
    }
}
