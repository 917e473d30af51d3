package peer

// ID is a libp2p peer ID: the binary multihash of the peer's encoded public
// key (identity multihash when the encoding is at most 42 bytes, SHA2-256
// otherwise), held as a string so that it is comparable and usable as a map
// key. Comparing two IDs with < compares their multihash bytes, which is the
// bytewise order Concord's tie-breaks use.
type ID string
