// RFC 3339 date-times (section 5.6), for the job `deadline`:
// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). `t`, `z` and a space separator are accepted
// (RFC 3339 §5.6 note). Leap second 60 is read as 59.999...

import Foundation

enum RFC3339 {
    static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        var at = 0
        func digits(_ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in 0..<n {
                let c = b[at + i]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            at += n
            return v
        }
        func expect(_ chars: String) -> Bool {
            guard at < b.count, chars.utf8.contains(b[at]) else { return false }
            at += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
              expect("Tt "), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"),
              let second = digits(2)
        else { return nil }
        var fraction = 0.0
        if at < b.count, b[at] == UInt8(ascii: ".") {
            at += 1
            var scale = 0.1
            let start = at
            while at < b.count, b[at] >= 0x30, b[at] <= 0x39 {
                fraction += Double(b[at] - 0x30) * scale
                scale /= 10
                at += 1
            }
            guard at > start else { return nil }
        }
        var offset = 0
        if expect("Zz") {
            offset = 0
        } else if at < b.count, b[at] == UInt8(ascii: "+") || b[at] == UInt8(ascii: "-") {
            let sign = b[at] == UInt8(ascii: "-") ? -1 : 1
            at += 1
            guard let oh = digits(2), expect(":"), let om = digits(2), oh <= 23, om <= 59 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard at == b.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset)
        return Date(timeIntervalSince1970: seconds + (second == 60 ? 0.999_999 : fraction))
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (H. Hinnant's days_from_civil).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
