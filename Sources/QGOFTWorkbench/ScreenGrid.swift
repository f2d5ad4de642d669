/// How many colours the terminal can show, which decides how colour ramps (the drift heatmap)
/// and series colours map onto the screen.
public enum ColorMode: String, Sendable, CaseIterable {
    /// 256-colour palette (xterm-256color and friends).
    case c256
    /// The 8 ANSI colours.
    case c8
    /// No colour at all (monochrome terminal or `NO_COLOR` set): ramps use glyph density.
    case none
}

/// The look of one cell: colours are terminal palette indices (0-7 ANSI, up to 255 in
/// 256-colour mode), `nil` is the terminal's default.
public struct Style: Hashable, Sendable {
    public var fg: Int16?
    public var bg: Int16?
    public var bold: Bool
    public var dim: Bool
    public var reverse: Bool
    public var underline: Bool

    public init(
        fg: Int16? = nil, bg: Int16? = nil, bold: Bool = false, dim: Bool = false,
        reverse: Bool = false, underline: Bool = false
    ) {
        self.fg = fg
        self.bg = bg
        self.bold = bold
        self.dim = dim
        self.reverse = reverse
        self.underline = underline
    }

    /// The terminal's default look.
    public static let plain = Style()

    /// A copy with reverse video switched on or off.
    public func reversed(_ on: Bool = true) -> Style {
        var s = self
        s.reverse = on
        return s
    }

    /// A copy in bold.
    public func bolded(_ on: Bool = true) -> Style {
        var s = self
        s.bold = on
        return s
    }
}

/// A rectangle of cells: `row`, `col` of the top-left corner, `height` rows by `width` columns.
public struct Rect: Equatable, Sendable, CustomStringConvertible {
    public var row: Int
    public var col: Int
    public var height: Int
    public var width: Int

    public init(row: Int, col: Int, height: Int, width: Int) {
        self.row = row
        self.col = col
        self.height = max(0, height)
        self.width = max(0, width)
    }

    /// True when nothing can be drawn in it.
    public var isEmpty: Bool { height <= 0 || width <= 0 }
    public var bottom: Int { row + height }
    public var right: Int { col + width }

    /// The top `n` rows, and the rest below.
    public func splitTop(_ n: Int) -> (Rect, Rect) {
        let k = min(max(0, n), height)
        return (
            Rect(row: row, col: col, height: k, width: width),
            Rect(row: row + k, col: col, height: height - k, width: width)
        )
    }

    /// The left `n` columns, and the rest to the right.
    public func splitLeft(_ n: Int) -> (Rect, Rect) {
        let k = min(max(0, n), width)
        return (
            Rect(row: row, col: col, height: height, width: k),
            Rect(row: row, col: col + k, height: height, width: width - k)
        )
    }

    /// The rectangle shrunk by `dr` rows at top and bottom and `dc` columns left and right.
    public func inset(rows dr: Int, cols dc: Int) -> Rect {
        Rect(row: row + dr, col: col + dc, height: height - 2 * dr, width: width - 2 * dc)
    }

    public var description: String { "(\(row),\(col) \(height)x\(width))" }
}

/// One cell of the grid: a single-column Unicode scalar and its style.
public struct Cell: Equatable, Sendable {
    public var scalar: Unicode.Scalar
    public var style: Style

    public init(_ scalar: Unicode.Scalar, _ style: Style = .plain) {
        self.scalar = scalar
        self.style = style
    }

    public static let blank = Cell(" ")
}

/// An off-screen character grid that every view draws into. `Terminal` copies it to the screen;
/// tests compare its `text` with committed snapshots. Each Unicode scalar takes one column
/// (every glyph the views draw is single-width); writes outside the grid or the clip rectangle
/// are dropped.
public struct ScreenGrid: Sendable {
    public let rows: Int
    public let cols: Int
    /// Row-major cells, rows * cols.
    public private(set) var cells: [Cell]

    public init(rows: Int, cols: Int) {
        self.rows = max(0, rows)
        self.cols = max(0, cols)
        cells = Array(repeating: .blank, count: self.rows * self.cols)
    }

    /// The whole grid as a rectangle.
    public var bounds: Rect { Rect(row: 0, col: 0, height: rows, width: cols) }

    public subscript(row: Int, col: Int) -> Cell {
        get {
            guard row >= 0, row < rows, col >= 0, col < cols else { return .blank }
            return cells[row * cols + col]
        }
        set {
            guard row >= 0, row < rows, col >= 0, col < cols else { return }
            cells[row * cols + col] = newValue
        }
    }

    /// Writes `text` starting at absolute (`row`, `col`), clipped to `clip` (default: the grid).
    /// Returns the number of columns written or skipped (the text's width).
    @discardableResult
    public mutating func put(
        _ text: String, row: Int, col: Int, style: Style = .plain, clip: Rect? = nil
    ) -> Int {
        let c = clip ?? bounds
        guard row >= c.row, row < c.bottom else { return text.unicodeScalars.count }
        var x = col
        for s in text.unicodeScalars {
            if x >= c.col, x < c.right { self[row, x] = Cell(s, style) }
            x += 1
        }
        return x - col
    }

    /// Writes `text` at (`r`, `c`) relative to `rect`, clipped to `rect`.
    @discardableResult
    public mutating func put(_ text: String, at r: Int, _ c: Int, in rect: Rect, style: Style = .plain)
        -> Int
    {
        put(text, row: rect.row + r, col: rect.col + c, style: style, clip: rect)
    }

    /// Sets one cell at (`r`, `c`) relative to `rect`, if inside it.
    public mutating func set(_ scalar: Unicode.Scalar, at r: Int, _ c: Int, in rect: Rect, style: Style = .plain) {
        guard r >= 0, r < rect.height, c >= 0, c < rect.width else { return }
        self[rect.row + r, rect.col + c] = Cell(scalar, style)
    }

    /// Fills `rect` with one glyph and style.
    public mutating func fill(_ rect: Rect, with scalar: Unicode.Scalar = " ", style: Style = .plain) {
        for r in rect.row..<rect.bottom {
            for c in rect.col..<rect.right { self[r, c] = Cell(scalar, style) }
        }
    }

    /// Changes the style of the cells of `rect` without touching the glyphs.
    public mutating func restyle(_ rect: Rect, _ change: (inout Style) -> Void) {
        for r in max(0, rect.row)..<min(rows, rect.bottom) {
            for c in max(0, rect.col)..<min(cols, rect.right) {
                change(&cells[r * cols + c].style)
            }
        }
    }

    /// One line of text per row, trailing spaces trimmed: what snapshot tests compare.
    public var text: String {
        var lines: [String] = []
        lines.reserveCapacity(rows)
        for r in 0..<rows {
            var line = String.UnicodeScalarView()
            for c in 0..<cols { line.append(cells[r * cols + c].scalar) }
            var s = String(line)
            while s.last == " " { s.removeLast() }
            lines.append(s)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The text of one row (trailing spaces kept).
    public func line(_ row: Int) -> String {
        var line = String.UnicodeScalarView()
        for c in 0..<cols { line.append(self[row, c].scalar) }
        return String(line)
    }
}
