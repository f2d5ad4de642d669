/// The styles of every role on screen for one `ColorMode`, and the drift colour ramp.
/// Views ask the theme; only it knows palette numbers.
public struct Theme: Sendable {
    public let mode: ColorMode

    public init(mode: ColorMode) { self.mode = mode }

    private var colored: Bool { mode != .none }
    private func color(_ ansi: Int16, _ c256: Int16? = nil, bold: Bool = false) -> Style {
        switch mode {
        case .none: Style(bold: bold)
        case .c8: Style(fg: ansi, bold: bold)
        case .c256: Style(fg: c256 ?? ansi, bold: bold)
        }
    }

    /// Panel title bars (htop's black-on-cyan headers; reverse video without colour).
    public var title: Style { colored ? Style(fg: 0, bg: 6) : Style(reverse: true) }
    /// Field names in the header and panels.
    public var label: Style { colored ? Style(fg: 6) : Style(dim: true) }
    public var value: Style { Style(bold: true) }
    public var dim: Style { Style(dim: true) }
    /// The selected row.
    public var selected: Style { colored ? Style(fg: 0, bg: 6) : Style(reverse: true) }
    public var error: Style { color(1, 196, bold: true) }
    public var warning: Style { color(3, 214) }
    public var good: Style { color(2, 41) }
    /// Key names in the key bar (htop: white on black then black on cyan).
    public var keyName: Style { Style(bold: true) }
    public var keyDesc: Style { colored ? Style(fg: 0, bg: 6) : Style(reverse: true) }
    /// The run state label.
    public func state(_ s: StateTone) -> Style {
        switch s {
        case .running: colored ? Style(fg: 0, bg: 2, bold: true) : Style(bold: true, reverse: true)
        case .paused: colored ? Style(fg: 0, bg: 3, bold: true) : Style(bold: true, reverse: true)
        case .done: colored ? Style(fg: 0, bg: 4, bold: true) : Style(bold: true, reverse: true)
        case .failed: colored ? Style(fg: 7, bg: 1, bold: true) : Style(bold: true, reverse: true)
        }
    }

    /// How a run state is coloured.
    public enum StateTone: Sendable { case running, paused, done, failed }

    // Chart series.
    public var rawLoss: Style { colored ? Style(fg: 7, dim: true) : Style(dim: true) }
    public var smoothLoss: Style { color(3, 226, bold: true) }
    public var taskLoss: Style { color(6, 45) }
    public var penalty: Style { color(5, 171) }
    public var accuracy: Style { color(2, 46, bold: true) }
    public var comparison: Style { color(4, 69) }
    public var lambdaSeries: Style { color(5, 171, bold: true) }
    public var lrSeries: Style { color(6, 45) }
    public var marker: Style { color(3, 214, bold: true) }
    public var cursor: Style { colored ? Style(fg: 1, bold: true) : Style(bold: true) }
    public var trendUp: Style { color(1, 203) }
    public var trendDown: Style { color(2, 77) }

    /// Number of distinct levels of the drift ramp.
    public var heatLevels: Int { heatRamp.count }

    /// One ramp entry per level, low to high: the glyph and its style.
    public var heatRamp: [Cell] {
        switch mode {
        case .c256:
            // Dark blue through teal and green to yellow and red (a perceptual-ish 256-colour ramp).
            let idx: [Int16] = [17, 18, 19, 25, 31, 37, 43, 78, 114, 150, 186, 222, 220, 214, 208, 202, 196]
            return idx.map { Cell("█", Style(fg: $0)) }
        case .c8:
            return [
                Cell("░", Style(fg: 4)), Cell("▒", Style(fg: 4)), Cell("█", Style(fg: 4)),
                Cell("█", Style(fg: 6)), Cell("█", Style(fg: 2)), Cell("█", Style(fg: 3)),
                Cell("█", Style(fg: 1)), Cell("█", Style(fg: 1, bold: true)),
            ]
        case .none:
            return [Cell("·"), Cell("░"), Cell("▒"), Cell("▓"), Cell("█")]
        }
    }

    /// The ramp level of `value` on a 0...`maximum` scale (level 0 for 0, top level for the maximum).
    public func heatLevel(_ value: Double, maximum: Double) -> Int {
        let n = heatLevels
        guard value.isFinite, maximum > 0, value > 0 else { return 0 }
        let t = min(1, value / maximum)
        // Level 0 is reserved for (near) zero; the rest split (0, max] evenly.
        return max(1, min(n - 1, Int((t * Double(n - 1)).rounded(.up))))
    }

    /// The cell for `value` on a 0...`maximum` scale.
    public func heat(_ value: Double, maximum: Double) -> Cell {
        guard value.isFinite else { return Cell("?", error) }
        return heatRamp[heatLevel(value, maximum: maximum)]
    }
}
