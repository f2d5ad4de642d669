import Foundation

/// A pixel canvas drawn with Unicode braille: each cell holds 2 x 4 dots, so a `cols` x `rows`
/// area has `2 cols` x `4 rows` pixels (y = 0 at the top). A cell takes the style of the last
/// series that set one of its dots.
struct BrailleCanvas {
    let cols: Int
    let rows: Int
    private(set) var bits: [UInt8]
    private(set) var styles: [Style]

    init(cols: Int, rows: Int) {
        self.cols = max(0, cols)
        self.rows = max(0, rows)
        bits = Array(repeating: 0, count: self.cols * self.rows)
        styles = Array(repeating: .plain, count: self.cols * self.rows)
    }

    var pixelWidth: Int { cols * 2 }
    var pixelHeight: Int { rows * 4 }

    // Dot bit of pixel (dx, dy) inside a cell: columns 1-2, rows 1-4 of the braille pattern.
    private static let dot: [[UInt8]] = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]]

    mutating func set(_ x: Int, _ y: Int, _ style: Style) {
        guard x >= 0, y >= 0, x < pixelWidth, y < pixelHeight else { return }
        let i = (y / 4) * cols + x / 2
        bits[i] |= Self.dot[y % 4][x % 2]
        styles[i] = style
    }

    /// A straight line between two pixels (Bresenham), both ends included.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ style: Style) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        var guardSteps = 0
        while guardSteps < 100_000 {
            set(x, y, style)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
            guardSteps += 1
        }
    }

    /// Copies the non-empty cells into `grid` at `rect` (top-left aligned).
    func blit(into grid: inout ScreenGrid, at rect: Rect) {
        for r in 0..<min(rows, rect.height) {
            for c in 0..<min(cols, rect.width) {
                let b = bits[r * cols + c]
                guard b != 0, let s = Unicode.Scalar(0x2800 + UInt32(b)) else { continue }
                grid[rect.row + r, rect.col + c] = Cell(s, styles[r * cols + c])
            }
        }
    }
}

/// A linear or log10 mapping of data values onto pixel rows.
struct YScale {
    var lo: Double
    var hi: Double
    var log: Bool

    /// Covers `values` (non-finite ones, and non-positive ones on a log scale, are ignored), with
    /// a little margin; nil when nothing is left.
    init?(values: [Double], log: Bool) {
        let usable = values.filter { $0.isFinite && (!log || $0 > 0) }
        guard var lo = usable.min(), var hi = usable.max() else { return nil }
        if log {
            lo = log10(lo)
            hi = log10(hi)
        }
        if hi - lo < 1e-12 {
            let pad = log ? 0.5 : max(abs(hi) * 0.1, 1e-6)
            lo -= pad
            hi += pad
        } else {
            let pad = (hi - lo) * 0.05
            lo -= pad
            hi += pad
        }
        if !log, lo < 0, usable.allSatisfy({ $0 >= 0 }) { lo = 0 }
        self.lo = lo
        self.hi = hi
        self.log = log
    }

    init(lo: Double, hi: Double) {
        self.lo = lo
        self.hi = hi
        log = false
    }

    /// Pixel row of `v` (0 = top) for a plot of `height` pixels; nil when `v` cannot be shown.
    func pixel(_ v: Double, height: Int) -> Int? {
        guard v.isFinite, !log || v > 0 else { return nil }
        let t = ((log ? log10(v) : v) - lo) / (hi - lo)
        guard t.isFinite else { return nil }
        let y = Int(((1 - t) * Double(height - 1)).rounded())
        return min(max(0, y), height - 1)
    }

    /// The data value at fraction `t` (0 bottom, 1 top).
    func value(at t: Double) -> Double {
        let v = lo + (hi - lo) * t
        return log ? pow(10, v) : v
    }
}

