import Foundation

/// Number and time formatting shared by the views. Pure and locale-independent, so text
/// snapshots are the same on every machine.
enum Fmt {
    /// C's `snprintf` of `args` (a frame formats a few hundred numbers: this is several times
    /// cheaper than `String(format:)`, which goes through CFString). The decimal point is "."
    /// because the numeric locale stays "C" (the terminal only sets LC_CTYPE from the user's).
    static func c(_ format: String, _ args: CVarArg...) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            let n = withVaList(args) { vsnprintf(buffer.baseAddress, 64, format, $0) }
            guard n >= 0 else { return "" }
            if n < 64 { return String(cString: buffer.baseAddress!) }
            // Longer than the buffer (not expected for numbers): format again with room.
            var big = [CChar](repeating: 0, count: Int(n) + 1)
            _ = withVaList(args) { vsnprintf(&big, big.count, format, $0) }
            return String(cString: big)
        }
    }

    /// `x` in at most `width` columns with as many significant digits as fit:
    /// fixed notation when it shows at least two significant digits, `1.2e-4` otherwise.
    static func fit(_ x: Double, width: Int = 6) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if x == 0 { return "0" }
        let a = abs(x)
        // Fixed: pick the most decimals that fit, need >= 2 significant digits (or an integer).
        if a >= 1e-2, a < 1e7 {
            for decimals in stride(from: 4, through: 0, by: -1) {
                var s = c("%.*f", Int32(decimals), x)
                let sig = significantDigits(s)
                if decimals > 0 {
                    while s.last == "0" { s.removeLast() }
                    if s.last == "." { s.removeLast() }
                }
                if s.count <= width {
                    if sig >= 2 || decimals == 0 { return s }
                }
            }
        }
        for digits in stride(from: 3, through: 0, by: -1) {
            let s = exp(x, digits: digits)
            if s.count <= width { return s }
        }
        return exp(x, digits: 0)
    }

    /// `1.23e-4` style without the `+` and leading zeros of C's `%e`.
    static func exp(_ x: Double, digits: Int) -> String {
        let s = c("%.*e", Int32(digits), x)
        guard let e = s.firstIndex(of: "e") else { return s }
        let mantissa = s[s.startIndex..<e]
        var expo = String(s[s.index(after: e)...])
        var sign = ""
        if expo.hasPrefix("-") { sign = "-" }
        expo = String(expo.drop(while: { $0 == "+" || $0 == "-" || $0 == "0" }))
        if expo.isEmpty { expo = "0" }
        return "\(mantissa)e\(sign)\(expo)"
    }

    private static func significantDigits(_ s: String) -> Int {
        let digits = s.filter { $0.isNumber }.drop(while: { $0 == "0" })
        return digits.count
    }

    /// A short scientific form for lambda / lr: `1e-4`, `2.5e-3`, `0`.
    static func sci(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : "inf" }
        if x == 0 { return "0" }
        var s = exp(x, digits: 2)
        // Trim trailing zeros of the mantissa: 2.50e-3 -> 2.5e-3, 1.00e-4 -> 1e-4.
        if let e = s.firstIndex(of: "e") {
            var m = String(s[s.startIndex..<e])
            let rest = String(s[e...])
            if m.firstIndex(of: ".") != nil {
                while m.last == "0" { m.removeLast() }
                if m.last == "." { m.removeLast() }
            }
            s = m + rest
        }
        return s
    }

    /// `12,345`.
    static func int(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// `4:03`, `1:02:03`; `--:--` when unknown.
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "--:--" }
        let t = Int(seconds.rounded())
        let h = t / 3600, m = (t % 3600) / 60, s = t % 60
        if h > 0 { return c("%d:%02d:%02d", h, m, s) }
        return c("%d:%02d", m, s)
    }

    /// `12.3%`.
    static func percent(_ x: Double, decimals: Int = 1) -> String {
        guard x.isFinite else { return "--" }
        return c("%.*f%%", Int32(decimals), x * 100)
    }

    /// Fixed decimals.
    static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : "inf" }
        return c("%.*f", Int32(decimals), x)
    }

    /// `text` cut or padded to exactly `width` columns (cut text ends with `…`).
    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        guard width > 0 else { return "" }
        let n = text.unicodeScalars.count
        if n > width {
            if width == 1 { return "…" }
            return String(String.UnicodeScalarView(text.unicodeScalars.prefix(width - 1))) + "…"
        }
        let space = String(repeating: " ", count: width - n)
        return right ? space + text : text + space
    }

    /// Cuts `text` to at most `width` columns (with `…`), no padding.
    static func cut(_ text: String, _ width: Int) -> String {
        text.unicodeScalars.count > width ? pad(text, width) : text
    }

    /// Column count of `text` (one per scalar, as the grid draws it).
    static func width(_ text: String) -> Int { text.unicodeScalars.count }
}

/// Short names for the adapted linear layers inside an encoder layer.
enum LayerNames {
    /// `encoder.layer.3.attention.output.dense` -> `a.out`.
    static func shortTarget(_ target: String) -> String {
        switch target {
        case "attention.self.query", "query": "query"
        case "attention.self.key", "key": "key"
        case "attention.self.value", "value": "value"
        case "attention.output.dense": "a.out"
        case "intermediate.dense": "inter"
        case "output.dense": "out"
        default: String(target.split(separator: ".").last ?? Substring(target))
        }
    }

    /// The encoder layer index and target of a module path like `encoder.layer.3.attention.self.key`.
    /// Scans the UTF-8 bytes once (the table parses every module name of every frame before the
    /// first statistics record).
    static func parse(_ module: String) -> (layer: Int, target: String) {
        let bytes = Array(module.utf8)
        let key = Array("layer.".utf8)
        let dot = UInt8(ascii: "."), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var i = 0
        while i + key.count < bytes.count {
            defer { i += 1 }
            guard i == 0 || bytes[i - 1] == dot, bytes[i..<(i + key.count)].elementsEqual(key) else { continue }
            var j = i + key.count, n = 0
            while j < bytes.count, bytes[j] >= zero, bytes[j] <= nine, n < 1_000_000 {
                n = n * 10 + Int(bytes[j] - zero)
                j += 1
            }
            guard j > i + key.count, j == bytes.count || bytes[j] == dot else { continue }
            // The target is everything after the layer number, as written.
            return (n, j == bytes.count ? "" : String(decoding: bytes[(j + 1)...], as: UTF8.self))
        }
        return (0, module)
    }

    /// `L3 a.out`.
    static func label(layer: Int, target: String) -> String { "L\(layer) \(shortTarget(target))" }
}
