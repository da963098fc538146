// systemd-probe: logs through the Systemd module's journal path in a process of its own, so that SystemdTests
// can run it inside a mount namespace where libsystemd finds a test listener at journald's socket path.
//   systemd-probe log LEVEL MESSAGE [KEY=VALUE ...]   one line through JournalLogHandler (text fallback on stderr)
//   systemd-probe send NAME=VALUE ...                 one entry through JournalSender; prints "sent" or the error
//   systemd-probe available                           prints whether journald's socket exists
import Foundation
import Logging
import Systemd

let args = Array(CommandLine.arguments.dropFirst())

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data((text + "\n").utf8))
    exit(2)
}

func pairs(_ items: ArraySlice<String>) -> [(String, String)] {
    items.map { item in
        guard let eq = item.firstIndex(of: "=") else { fail("expected NAME=VALUE, got \(item)") }
        return (String(item[..<eq]), String(item[item.index(after: eq)...]))
    }
}

switch args.first {
case "log":
    guard args.count >= 3, let level = Logger.Level(rawValue: args[1]) else { fail("usage: log LEVEL MESSAGE [KEY=VALUE ...]") }
    let handler = JournalLogHandler(identifier: "darkroomd", level: .trace)
    let logger = Logger(label: "probe") { _ in handler }
    var metadata: Logger.Metadata = [:]
    for (k, v) in pairs(args[3...]) { metadata[k] = .string(v) }
    logger.log(level: level, "\(args[2])", metadata: metadata)
case "send":
    switch JournalSender().send(pairs(args[1...]).map { JournalField(name: $0.0, value: $0.1) }) {
    case .success: print("sent")
    case .failure(let error): print("\(error.code.rawValue) \(error.errno)")
    }
case "available":
    print(JournalSender.isAvailable)
default:
    fail("usage: systemd-probe log|send|available ...")
}
