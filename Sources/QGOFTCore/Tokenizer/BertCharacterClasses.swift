// Character classes used by the BERT normalizer and pre-tokenizer, as HuggingFace `tokenizers`
// (Rust, version 0.23.3) computes them. Everything here works on Unicode scalars, which are what a
// Rust `char` is; Swift `Character`s (grapheme clusters) would merge e.g. an emoji ZWJ sequence
// into one unit that Rust sees as several.
//
// The Rust crate takes general categories from the `unicode_categories` crate (0.1.1, 2016),
// whose tables predate Unicode 9. Swift's tables are current, so a plain general-category test
// would disagree on every character assigned since. Measured against tokenizers 0.23.3 for every
// code point (Tests/Fixtures/tokenizer/unicode_classes.json, written by
// scripts/reference/make_tokenizer_fixture.py, pins this down), the old tables behave exactly like
// "category as of today, and assigned in Unicode 8.0 or earlier", except for the few characters
// whose category changed after 8.0 (listed below). Unassigned code points (Cn) are not "other" for
// that crate: it has no Cn table. NFD comes from another old crate, with Unicode 9.0 data.

/// Predicates on Unicode scalars that reproduce `tokenizers`' BERT normalizer and pre-tokenizer.
enum BertCharacterClasses {
    /// True when `s` was assigned in Unicode 8.0 or earlier, the data of `unicode_categories` 0.1.1.
    @inline(__always)
    static func isInOldTables(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Rust `char::is_whitespace` (the White_Space property), plus tab, newline and carriage return
    /// which it already contains. `tokenizers` normalizers/bert.rs `is_whitespace`.
    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 {
            return s == " " || s == "\t" || s == "\n" || s == "\r" || s.value == 0x0B || s.value == 0x0C
        }
        return s.properties.isWhitespace
    }

    /// What `clean_text` deletes: NUL, U+FFFD, and `unicode_categories`' `is_other` (Cc, Cf, Co with
    /// Unicode 8.0 data; no Cn), except tab, newline and carriage return, which become spaces.
    /// `tokenizers` normalizers/bert.rs `do_clean_text` and `is_control`.
    @inline(__always)
    static func isRemovedByCleaning(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
        if v == 0xFFFD { return true }
        switch s.properties.generalCategory {
        case .control, .privateUse: return true
        case .format: return isInOldTables(s)
        default: return false
        }
    }

    /// Code points BERT pads with spaces. The ranges are those of the Rust crate's
    /// `is_chinese_char`, which differ from Google BERT's Python `_is_chinese_char` in one range:
    /// Rust starts the CJK Extension E block at U+2B920, Python at U+2B820, so U+2B820...U+2B91F
    /// (the end of Extension D's allocation and the start of E) are not padded here.
    @inline(__always)
    static func isChineseCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// What `strip_accents` drops after NFD: `unicode_categories`' `is_mark_nonspacing` (Mn, with
    /// Unicode 8.0 data). Five characters changed category since: U+1734 HANUNOO SIGN PAMUDPOD and
    /// U+1171E AHOM CONSONANT SIGN MEDIAL RA were Mn (now Mc); U+1885 and U+1886 MONGOLIAN LETTER
    /// ALI GALI BALUDA were Lo, U+A9BD JAVANESE CONSONANT SIGN KERET was Mc and U+111C9 SHARADA
    /// SANDHI MARK was Po (all now Mn).
    @inline(__always)
    static func isNonspacingMark(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case ..<0x300: return false
        case 0x1734, 0x1171E: return true
        case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false
        default: return s.properties.generalCategory == .nonspacingMark && isInOldTables(s)
        }
    }

    /// True when NFD leaves `s` alone and never moves a mark across it: no decomposition and
    /// combining class 0. A cheap sufficient test, so that ASCII, CJK and unassigned or private
    /// scalars skip Foundation's NFD. Nothing below U+00C0 decomposes or combines; unified CJK
    /// ideographs (not the compatibility ones at U+F900 and U+2F800) never decompose.
    @inline(__always)
    static func isInertUnderNFD(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case ..<0xC0, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0x20000...0x2A6DF, 0x2A700...0x2EBEF, 0x30000...0x323AF:
            return true
        default:
            let category = s.properties.generalCategory
            return category == .unassigned || category == .privateUse
        }
    }

    /// True when `s` was assigned after Unicode 9.0, the data of `unicode-normalization-alignments`
    /// 0.1.12, the fork `tokenizers` uses for NFD. To it such a scalar has no decomposition and
    /// combining class 0 (measured: U+11938, from 13.0, stays whole; marks from 10.0 on are
    /// not reordered).
    @inline(__always)
    static func isUnknownToNormalization(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major > 9 || (age.major == 9 && age.minor > 0)
    }

    /// `tokenizers` pre_tokenizers/bert.rs `is_bert_punc`: ASCII punctuation, or any P* category
    /// with Unicode 8.0 data. Two characters were P* then and are not now: U+166D CANADIAN
    /// SYLLABICS CHI SIGN (now So) and U+111C9 SHARADA SANDHI MARK (now Mn).
    @inline(__always)
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v)
                || (0x7B...0x7E).contains(v)
        }
        if v == 0x166D || v == 0x111C9 { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isInOldTables(s)
        default:
            return false
        }
    }
}
