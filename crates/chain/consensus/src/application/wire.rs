//! The application's messages between peers on the block channel: a tag
//! byte, then a block, a request, a batch of transactions, a sync request
//! or a finalization certificate.

use super::*;

/// Messages on the block channel: a block's contents, or a request for one
/// (its digest, and the asker's finalized height, 8 bytes big-endian: the
/// answer is the block and its ancestors above that height, at most
/// [`ANCESTORS_MAX`]).
pub const TAG_BLOCK: u8 = 0;
pub const TAG_REQUEST: u8 = 1;
/// Transactions clients submitted to one validator, passed on to the others
/// so whichever leads next can include them: each as a 4-byte big-endian
/// length and its canonical bytes, batched to spare a message per transaction.
pub const TAG_TXS: u8 = 2;
/// A request for the finalized blocks after a height (8 bytes, big-endian),
/// from a node that follows the chain without voting, or has fallen behind.
pub const TAG_SYNC: u8 = 3;
/// The answer's last part: the certificate that finalized the last block sent.
pub const TAG_CERTIFICATE: u8 = 4;
/// The most transactions in one gossip message.
pub const GOSSIP_BATCH_MAX: usize = 512;
/// How long an admitted transaction waits for others to share its message.
pub(super) const GOSSIP_DELAY: Duration = Duration::from_millis(5);

/// A message on the block channel, parsed but not yet checked against
/// anything: what a peer sent, or nothing if it was malformed.
#[derive(Debug, PartialEq)]
pub enum Inbound<'a> {
    /// A block's contents.
    Block(Box<Block>),
    /// A block asked for by digest, with the asker's finalized height.
    Request {
        /// The block's digest.
        digest: Digest,
        /// The height the asker has finalized.
        floor: u64,
    },
    /// Transactions passed on: those whose frames decoded, up to the first
    /// malformed frame (a faulty peer's) and at most [`GOSSIP_BATCH_MAX`].
    Txs(Vec<SignedTransaction>),
    /// The finalized blocks after a height, asked for.
    Sync(u64),
    /// A finalization certificate's bytes, decoded against the committee
    /// of the epoch it claims (which the parse does not know).
    Certificate(&'a [u8]),
}

/// Parses a block-channel message from a peer. Never panics and allocates
/// at most in proportion to `bytes` (which the p2p layer bounds): anything
/// malformed is `None` or, in a batch of transactions, the frames before it.
pub fn parse(bytes: &[u8]) -> Option<Inbound<'_>> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        TAG_BLOCK => Block::from_bytes(rest)
            .ok()
            .map(|b| Inbound::Block(Box::new(b))),
        TAG_REQUEST => {
            let (digest, floor) = rest.split_first_chunk::<32>()?;
            let floor = <[u8; 8]>::try_from(floor).ok()?;
            Some(Inbound::Request {
                digest: commonware_cryptography::sha256::Digest(*digest),
                floor: u64::from_be_bytes(floor),
            })
        }
        TAG_TXS => Some(Inbound::Txs(parse_txs(rest))),
        TAG_SYNC => Some(Inbound::Sync(u64::from_be_bytes(
            <[u8; 8]>::try_from(rest).ok()?,
        ))),
        TAG_CERTIFICATE => Some(Inbound::Certificate(rest)),
        // Anything else is noise from a faulty peer.
        _ => None,
    }
}

/// The transactions of a batch's frames, up to the first malformed one.
fn parse_txs(mut rest: &[u8]) -> Vec<SignedTransaction> {
    let mut txs = Vec::new();
    for _ in 0..GOSSIP_BATCH_MAX {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            break;
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > tranche_types::TX_BYTES_MAX || len > tail.len() {
            break;
        }
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(tx) = SignedTransaction::from_bytes(bytes) {
            txs.push(tx);
        }
    }
    txs
}

pub(super) fn digest_of(hash: &Hash) -> Digest {
    commonware_cryptography::sha256::Digest(hash.0)
}

pub(super) fn block_message(block: &Block) -> Vec<u8> {
    tagged_block(&tranche_types::commonware_codec::Encode::encode(block))
}

/// The message carrying a block given in its canonical encoding.
pub(super) fn tagged_block(encoded: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + encoded.len());
    bytes.push(TAG_BLOCK);
    bytes.extend_from_slice(encoded);
    bytes
}
