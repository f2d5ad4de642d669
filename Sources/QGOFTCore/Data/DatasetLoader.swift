import Foundation

/// The file formats `DatasetLoader` reads.
public enum DatasetFormat: String, Sendable, CaseIterable {
    /// Comma-separated, RFC 4180 quoting, header row.
    case csv
    /// Tab-separated, the same quoting rules as CSV (Python `csv` with `delimiter='\t'`), header row.
    case tsv
    /// JSON Lines: one object per line, blank lines skipped.
    case jsonl

    /// The format an extension names (`csv`, `tsv`/`tab`, `jsonl`/`json`/`ndjson`), or nil.
    public init?(extension ext: String) {
        switch ext.lowercased() {
        case "csv": self = .csv
        case "tsv", "tab": self = .tsv
        case "jsonl", "json", "ndjson": self = .jsonl
        default: return nil
        }
    }
}

/// Reads a labelled text dataset from a CSV, TSV or JSONL file.
///
/// Columns: the text column defaults to `text` (then `sentence`), the label column to `label`.
/// Labels: when every label is an integer (a JSON number without fraction or exponent, or a
/// CSV/TSV field of ASCII digits with an optional leading `-`) the classes are the sorted distinct
/// integers; otherwise, when they are strings, the sorted distinct strings. Labels that mix the two
/// kinds (`0, 1, pos, neg`, or JSON strings `"0"` and `"pos"`) are refused unless a label map
/// (`--label-map neg=0,pos=1`) says which integer each text label stands for. Booleans, floats,
/// null, arrays and objects are errors. Every problem is a `DatasetError` naming the file, and the
/// line where it helps; text quoted from the file is cut to `DatasetError.quoteLimit` characters.
public enum DatasetLoader {
    /// Loads `url`.
    /// - Parameters:
    ///   - textColumn: column holding the text (nil: `text`, else `sentence`).
    ///   - labelColumn: column holding the label (nil: `label`).
    ///   - filter: keep only rows whose `column` equals `value` (compared as text).
    ///   - name: the dataset's name (nil: the file name).
    ///   - labelMap: label text -> integer class (`--label-map`); labels it does not name must be
    ///     integers. Parse the option with `LabelMap.parse`.
    public static func load(
        url: URL, textColumn: String?, labelColumn: String?,
        filter: (column: String, value: String)? = nil, name: String? = nil, labelMap: [String: Int]? = nil
    ) throws -> TextDataset {
        let data = try read(url)
        return try load(
            data: data, url: url, textColumn: textColumn, labelColumn: labelColumn, filter: filter, name: name,
            labelMap: labelMap)
    }

    /// Reads the file, refusing a missing path or a folder.
    private static func read(_ url: URL) throws -> Data {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(
                .missingFile, file: path,
                "no such file; pass a CSV, TSV or JSONL file, or a dataset name (\(AssetStore.knownDatasets.map(\.name).joined(separator: ", ")))")
        }
        if isDirectory.boolValue {
            throw DatasetError(.missingFile, file: path, "is a folder; pass a CSV, TSV or JSONL file")
        }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw DatasetError(.missingFile, file: path, "cannot read the file: \(error.localizedDescription)")
        }
    }

    /// Parses the bytes of a dataset file; `url` names it in errors and decides the format by
    /// its extension. The fuzz targets call this directly, without touching the disk.
    public static func load(
        data: Data, url: URL, textColumn: String?, labelColumn: String?,
        filter: (column: String, value: String)? = nil, name: String? = nil, labelMap: [String: Int]? = nil
    ) throws -> TextDataset {
        let path = url.path
        let sha = SHA256.hex(of: data)
        let parsed = try data.withUnsafeBytes { raw -> (labels: [RawLabel], texts: [String], lines: [Int], column: String) in
            let all = raw.bindMemory(to: UInt8.self)
            // Skip a UTF-8 byte order mark.
            var start = 0
            if all.count >= 3, all[0] == 0xEF, all[1] == 0xBB, all[2] == 0xBF { start = 3 }
            let bytes = UnsafeBufferPointer(rebasing: all[start...])
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
                throw DatasetError(
                    .emptyFile, file: path,
                    all.isEmpty ? "the file is empty" : "the file holds only whitespace; expected a header row and data rows")
            }
            try checkUTF8(bytes, file: path)
            let format = try detectFormat(url: url, bytes: bytes)
            let columns = Columns(text: textColumn, label: labelColumn, filter: filter)
            switch format {
            case .csv: return try readDelimited(bytes, delimiter: UInt8(ascii: ","), columns: columns, file: path)
            case .tsv: return try readDelimited(bytes, delimiter: UInt8(ascii: "\t"), columns: columns, file: path)
            case .jsonl: return try readJSONLines(bytes, columns: columns, file: path)
            }
        }
        if parsed.texts.isEmpty {
            if let filter {
                throw DatasetError(
                    .noRows, file: path, "no rows where \(DatasetError.clip(filter.column)) == \(DatasetError.quote(filter.value))")
            }
            throw DatasetError(.noRows, file: path, "no data rows after the header")
        }
        let (names, indices) = try classes(
            parsed.labels, lines: parsed.lines, column: parsed.column, file: path, labelMap: labelMap)
        let examples = zip(parsed.texts, indices).map { TextExample(text: $0, label: $1) }
        return TextDataset(
            name: name ?? url.lastPathComponent, source: url, sha256: sha, labelNames: names, examples: examples)
    }

    // MARK: - Format

    /// The format by extension; for other extensions, sniffed from the first line.
    static func detectFormat(url: URL, bytes: UnsafeBufferPointer<UInt8>) throws -> DatasetFormat {
        let ext = url.pathExtension
        let firstSolid = bytes.first(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) })
        if firstSolid == UInt8(ascii: "[") && (ext.lowercased() == "json" || DatasetFormat(extension: ext) == nil) {
            throw DatasetError(
                .unknownFormat, file: url.path,
                "holds a JSON array; qgoft reads JSON Lines (one object per line): convert it with `jq -c '.[]' \(url.lastPathComponent) > data.jsonl`")
        }
        if let format = DatasetFormat(extension: ext) { return format }
        if firstSolid == UInt8(ascii: "{") { return .jsonl }
        let firstLine = bytes.prefix(while: { $0 != 0x0A && $0 != 0x0D })
        if firstLine.contains(0x09) { return .tsv }
        if firstLine.contains(UInt8(ascii: ",")) { return .csv }
        throw DatasetError(
            .unknownFormat, file: url.path,
            "cannot tell the format (extension \(DatasetError.quote(ext))); use a .csv, .tsv or .jsonl file")
    }

    /// Throws `.invalidUTF8` naming the line of the first bad byte.
    static func checkUTF8(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws {
        if String(validating: bytes, as: UTF8.self) != nil { return }
        // Slow path, only on failure: find the first bad byte.
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        scan: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: break scan
            case .error: break scan
            }
        }
        let line = 1 + bytes.prefix(offset).reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        throw DatasetError(
            .invalidUTF8, file: file, line: line,
            "invalid UTF-8 at byte \(offset); save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
    }

    // MARK: - Columns

    /// The requested columns.
    struct Columns {
        var text: String?
        var label: String?
        var filter: (column: String, value: String)?

        /// Picks the text and label columns from `available`, or throws `.missingColumn`
        /// listing what the file has.
        func resolve(_ available: [String], file: String, line: Int?, what: String) throws -> (text: String, label: String) {
            let listed = DatasetError.list(available)
            let text: String
            if let t = self.text {
                guard available.contains(t) else {
                    throw DatasetError(
                        .missingColumn, file: file, line: line,
                        "no text column \(DatasetError.quote(t)) (\(what): \(listed)); pass --text-column NAME")
                }
                text = t
            } else if available.contains("text") {
                text = "text"
            } else if available.contains("sentence") {
                text = "sentence"
            } else {
                throw DatasetError(
                    .missingColumn, file: file, line: line,
                    "no text column 'text' or 'sentence' (\(what): \(listed)); pass --text-column NAME")
            }
            let label = self.label ?? "label"
            guard available.contains(label) else {
                throw DatasetError(
                    .missingColumn, file: file, line: line,
                    "no label column \(DatasetError.quote(label)) (\(what): \(listed)); pass --label-column NAME")
            }
            if let f = filter, !available.contains(f.column) {
                throw DatasetError(
                    .missingColumn, file: file, line: line,
                    "no column \(DatasetError.quote(f.column)) to filter on (\(what): \(listed))")
            }
            return (text, label)
        }
    }

    // MARK: - CSV / TSV

    /// A header field like "0", "-1" or "0.5": a sign that the first line is data.
    private static func looksNumeric(_ s: String) -> Bool {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard let first = t.unicodeScalars.first, first == "-" || ("0"..."9").contains(first) else { return false }
        return Double(t) != nil
    }

    private static func readDelimited(
        _ bytes: UnsafeBufferPointer<UInt8>, delimiter: UInt8, columns: Columns, file: String
    ) throws -> (labels: [RawLabel], texts: [String], lines: [Int], column: String) {
        var header: [String]?
        var textIndex = 0
        var labelIndex = 0
        var filterIndex: Int?
        var labelColumn = ""
        var texts: [String] = []
        var labelTexts: [String] = []
        var lines: [Int] = []
        let delimiterName = delimiter == 0x09 ? "a tab" : "','"

        try DelimitedParser.parse(bytes, delimiter: delimiter, file: file) { record in
            guard let names = header else {
                let fields = record.fields
                let resolved: (text: String, label: String)
                do {
                    resolved = try columns.resolve(fields, file: file, line: record.line, what: "the header has")
                } catch let error as DatasetError where error.kind == .missingColumn {
                    if let number = fields.first(where: looksNumeric) {
                        throw DatasetError(
                            .noHeader, file: file, line: record.line,
                            "this looks like data, not a header (\(DatasetError.quote(number)) where a column name should be); the first line must name the columns, e.g. text\(delimiter == 0x09 ? "\\t" : ",")label")
                    }
                    throw error
                }
                for name in [resolved.text, resolved.label] where fields.filter({ $0 == name }).count > 1 {
                    throw DatasetError(
                        .noHeader, file: file, line: record.line,
                        "column \(DatasetError.quote(name)) appears more than once in the header; rename one")
                }
                textIndex = fields.firstIndex(of: resolved.text) ?? 0
                labelIndex = fields.firstIndex(of: resolved.label) ?? 0
                if let f = columns.filter { filterIndex = fields.firstIndex(of: f.column) }
                labelColumn = resolved.label
                header = fields
                return
            }
            guard record.fields.count == names.count else {
                throw DatasetError(
                    .wrongFieldCount, file: file, line: record.line,
                    "\(record.fields.count) fields, but the header has \(names.count); a field that contains \(delimiterName), a quote or a line break must be quoted")
            }
            if let fi = filterIndex, let f = columns.filter, record.fields[fi] != f.value { return }
            texts.append(record.fields[textIndex])
            labelTexts.append(record.fields[labelIndex])
            lines.append(record.line)
        }
        if header == nil {
            throw DatasetError(.noHeader, file: file, "no header row")
        }
        // Integers when every label is an integer (ASCII digits, optional leading '-'), else
        // strings; `classes` refuses a mix of digit and word labels.
        var labels: [RawLabel] = []
        labels.reserveCapacity(labelTexts.count)
        let allIntegers = labelTexts.allSatisfy(looksInteger)
        for (k, s) in labelTexts.enumerated() {
            if s.isEmpty {
                throw DatasetError(.badValue, file: file, line: lines[k], "empty label in column \(DatasetError.quote(labelColumn))")
            }
            if allIntegers {
                guard let v = Int(s) else {
                    throw DatasetError(.badValue, file: file, line: lines[k], "label \(DatasetError.quote(s)) is too large")
                }
                labels.append(.integer(v))
            } else {
                labels.append(.string(s))
            }
        }
        return (labels, texts, lines, labelColumn)
    }

    // MARK: - JSON Lines

    private static func readJSONLines(
        _ bytes: UnsafeBufferPointer<UInt8>, columns: Columns, file: String
    ) throws -> (labels: [RawLabel], texts: [String], lines: [Int], column: String) {
        var texts: [String] = []
        var labels: [RawLabel] = []
        var lines: [Int] = []
        var resolved: (text: String, label: String)?
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            let next = end + 1
            if end > start, bytes[end - 1] == 0x0D { end -= 1 }
            let lineBytes = UnsafeBufferPointer(rebasing: bytes[start..<end])
            start = next
            if lineBytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }

            let value: JSONValue
            do {
                var parser = JSONParser(bytes: UnsafeRawBufferPointer(lineBytes), allowDuplicateKeys: true)
                value = try parser.parseDocument()
            } catch let e as JSONParser.Failure {
                throw DatasetError(.invalidJSON, file: file, line: lineNumber, "invalid JSON at column \(e.offset + 1): \(e.message)")
            }
            guard case .object(let members) = value else {
                throw DatasetError(
                    .invalidJSON, file: file, line: lineNumber,
                    "expected a JSON object per line, found \(value.kindName)")
            }
            let keys = members.map(\.key)
            let cols: (text: String, label: String)
            if let r = resolved {
                cols = r
                // Later lines must have the columns the first one had.
                if value[r.text] == nil || value[r.label] == nil
                    || (columns.filter.map { value[$0.column] == nil } ?? false)
                {
                    _ = try columns.resolve(keys, file: file, line: lineNumber, what: "this object has keys")
                    let missing = value[r.text] == nil ? r.text : r.label
                    throw DatasetError(
                        .missingColumn, file: file, line: lineNumber,
                        "no key \(DatasetError.quote(missing)) (this object has keys: \(DatasetError.list(keys)))")
                }
            } else {
                cols = try columns.resolve(keys, file: file, line: lineNumber, what: "the first object has keys")
                resolved = cols
            }
            if let f = columns.filter, value[f.column]?.scalarText != f.value { continue }

            guard case .string(let text)? = value[cols.text] else {
                throw DatasetError(
                    .badValue, file: file, line: lineNumber,
                    "\(DatasetError.quote(cols.text)) is \(value[cols.text]?.kindName ?? "missing"), expected a string")
            }
            let labelValue = value[cols.label] ?? .null
            switch labelValue {
            case .integer(let v):
                labels.append(.integer(v))
            case .string(let s):
                if s.isEmpty {
                    throw DatasetError(.badValue, file: file, line: lineNumber, "empty label in \(DatasetError.quote(cols.label))")
                }
                labels.append(.string(s))
            default:
                throw DatasetError(
                    .badValue, file: file, line: lineNumber,
                    "label \(DatasetError.quote(cols.label)) is \(labelValue.kindName); labels must be integers or strings")
            }
            texts.append(text)
            lines.append(lineNumber)
        }
        return (labels, texts, lines, resolved?.label ?? (columns.label ?? "label"))
    }

    // MARK: - Labels

    /// A label as read: an integer, or a string.
    enum RawLabel {
        case integer(Int)
        case string(String)
    }

    /// A label text that reads as an integer: ASCII digits with an optional leading `-`.
    static func looksInteger(_ s: String) -> Bool {
        var u = Substring(s).utf8[...]
        if u.first == UInt8(ascii: "-") { u = u.dropFirst() }
        return !u.isEmpty && u.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Class names and per-row class indices; throws on mixed kinds (unless `labelMap` resolves
    /// them) or fewer than 2 classes.
    ///
    /// With `labelMap`, a label whose text the map names becomes its integer; every other label
    /// must be an integer, and the classes are the sorted distinct integers.
    static func classes(
        _ labels: [RawLabel], lines: [Int], column: String, file: String, labelMap: [String: Int]? = nil
    ) throws -> ([String], [Int]) {
        let names: [String]
        let indices: [Int]
        if let labelMap {
            var ints: [Int] = []
            ints.reserveCapacity(labels.count)
            var uncovered: [(String, Int)] = []
            var uncoveredSeen: Set<String> = []
            for (k, l) in labels.enumerated() {
                switch l {
                case .integer(let v):
                    ints.append(labelMap[String(v)] ?? v)
                case .string(let s):
                    if let v = labelMap[s] {
                        ints.append(v)
                    } else if looksInteger(s), let v = Int(s) {
                        ints.append(v)
                    } else {
                        if uncoveredSeen.insert(s).inserted { uncovered.append((s, lines[k])) }
                        ints.append(0)
                    }
                }
            }
            if let (first, line) = uncovered.first {
                let shown = uncovered.prefix(5).map { "\(DatasetError.quote($0.0)) on line \($0.1)" }.joined(separator: ", ")
                let more = uncovered.count > 5 ? " and \(uncovered.count - 5) more" : ""
                throw DatasetError(
                    .badValue, file: file, line: line,
                    "column \(DatasetError.quote(column)): label \(DatasetError.quote(first)) is not in --label-map \(LabelMap.format(labelMap)) and is not an integer (labels not covered: \(shown)\(more)); add each one, e.g. --label-map \(LabelMap.format(labelMap)),\(DatasetError.clip(first, limit: 20))=N")
            }
            let (distinct, idx) = sortedClasses(ints)
            names = distinct.map(String.init)
            indices = idx
        } else {
            // Integer-looking labels (JSON integers, digit strings) next to word labels: the
            // classic 0/1 + neg/pos mix-up. Refuse, showing both kinds.
            var integerExamples: [(String, Int)] = [], wordExamples: [(String, Int)] = []
            var seenIntegers: Set<String> = [], seenWords: Set<String> = []
            var anyJSONInteger = false, anyString = false
            for (k, l) in labels.enumerated() {
                switch l {
                case .integer(let v):
                    anyJSONInteger = true
                    if integerExamples.count < 3, seenIntegers.insert(String(v)).inserted { integerExamples.append((String(v), lines[k])) }
                case .string(let s):
                    anyString = true
                    if looksInteger(s) {
                        if integerExamples.count < 3, seenIntegers.insert(s).inserted { integerExamples.append((s, lines[k])) }
                    } else if wordExamples.count < 3, seenWords.insert(s).inserted {
                        wordExamples.append((s, lines[k]))
                    }
                }
            }
            if !integerExamples.isEmpty, !wordExamples.isEmpty {
                func shown(_ e: [(String, Int)]) -> String {
                    e.map { "\(DatasetError.quote($0.0)) on line \($0.1)" }.joined(separator: ", ")
                }
                // Where the second kind first shows up: the line that makes it a mix.
                let firstLine = max(integerExamples[0].1, wordExamples[0].1)
                let words = wordExamples.map { DatasetError.clip($0.0, limit: 20) }
                let suggestion = words.enumerated().map { "\($0.element)=N\($0.offset + 1)" }.joined(separator: ",")
                throw DatasetError(
                    .badValue, file: file, line: firstLine,
                    "column \(DatasetError.quote(column)) mixes integer labels (\(shown(integerExamples))) with text labels (\(shown(wordExamples))); they would count as different classes. Use one kind for all labels, or say which integer each text label means with --label-map \(suggestion)")
            }
            if anyJSONInteger && !anyString {
                let ints = labels.map { l -> Int in if case .integer(let v) = l { return v } else { return 0 } }
                let (distinct, idx) = sortedClasses(ints)
                names = distinct.map(String.init)
                indices = idx
            } else {
                let strings = labels.map { l -> String in
                    switch l {
                    case .integer(let v): return String(v)
                    case .string(let s): return s
                    }
                }
                (names, indices) = sortedClasses(strings)
            }
        }
        if names.count < 2 {
            throw DatasetError(
                .tooFewClasses, file: file,
                "column \(DatasetError.quote(column)) has only \(names.count) class (\(DatasetError.list(names))) in \(labels.count) rows; a classifier needs at least 2 (check --label-column)")
        }
        return (names, indices)
    }

    /// The sorted distinct values (the classes) and, for each value, its class index.
    private static func sortedClasses<T: Hashable & Comparable>(_ values: [T]) -> ([T], [Int]) {
        let distinct = Array(Set(values)).sorted()
        var position: [T: Int] = [:]
        for (i, v) in distinct.enumerated() { position[v] = i }
        return (distinct, values.map { position[$0] ?? 0 })
    }
}
