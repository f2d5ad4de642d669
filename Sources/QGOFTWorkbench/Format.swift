import Foundation

/// Number and time formatting shared by the views. Pure and locale-independent, so text
/// snapshots are the same on every machine.
enum Fmt {
    /// `x` in at most `width` columns with as many significant digits as fit:
    /// fixed notation when it shows at least two significant digits, `1.2e-4` otherwise.
    static func fit(_ x: Double, width: Int = 6) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if x == 0 { return "0" }
        let a = abs(x)
        // Fixed: pick the most decimals that fit, need >= 2 significant digits (or an integer).
        if a >= 1e-2, a < 1e7 {
            for decimals in stride(from: 4, through: 0, by: -1) {
                var s = String(format: "%.\(decimals)f", x)
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
        let s = String(format: "%.\(digits)e", x)
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
            if m.contains(".") {
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
        if h > 0 { return String(format: "%d:%02d:%02d", h, m, s) }
        return String(format: "%d:%02d", m, s)
    }

    /// `12.3%`.
    static func percent(_ x: Double, decimals: Int = 1) -> String {
        guard x.isFinite else { return "--" }
        return String(format: "%.\(decimals)f%%", x * 100)
    }

    /// Fixed decimals.
    static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : "inf" }
        return String(format: "%.\(decimals)f", x)
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
    static func parse(_ module: String) -> (layer: Int, target: String) {
        let parts = module.split(separator: ".").map(String.init)
        if let i = parts.firstIndex(of: "layer"), i + 1 < parts.count, let n = Int(parts[i + 1]) {
            return (n, parts[(i + 2)...].joined(separator: "."))
        }
        return (0, module)
    }

    /// `L3 a.out`.
    static func label(layer: Int, target: String) -> String { "L\(layer) \(shortTarget(target))" }
}
