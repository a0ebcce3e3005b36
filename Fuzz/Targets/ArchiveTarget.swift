import MSBArchive

/// Archives: one input as an image layer (plain, gzip or zstd tar) and as a `msb cp` stream,
/// into a scratch directory with small limits (MSBArchive's ArchiveFuzzing). A crash, a
/// hang or a file outside the scratch directory is a finding.
@Sendable func fuzzArchive(_ bytes: [UInt8]) {
    ArchiveFuzzing.run(bytes)
}
