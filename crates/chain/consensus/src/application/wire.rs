//! The application's messages between peers on the block channel: a tag
//! byte, then a block, a request, a batch of transactions, a sync request
//! or a finalization certificate.

use super::*;

/// Messages on the block channel: a block's contents, or a request for one
/// (its digest, and the asker's finalized height, 8 bytes big-endian: the
/// answer is the block and its ancestors above that height, at most
/// [`ANCESTORS_MAX`]).
pub(super) const TAG_BLOCK: u8 = 0;
pub(super) const TAG_REQUEST: u8 = 1;
/// Transactions clients submitted to one validator, passed on to the others
/// so whichever leads next can include them: each as a 4-byte big-endian
/// length and its canonical bytes, batched to spare a message per transaction.
pub(super) const TAG_TXS: u8 = 2;
/// A request for the finalized blocks after a height (8 bytes, big-endian),
/// from a node that follows the chain without voting, or has fallen behind.
pub(super) const TAG_SYNC: u8 = 3;
/// The answer's last part: the certificate that finalized the last block sent.
pub(super) const TAG_CERTIFICATE: u8 = 4;
/// The most transactions in one gossip message.
pub(super) const GOSSIP_BATCH_MAX: usize = 512;
/// How long an admitted transaction waits for others to share its message.
pub(super) const GOSSIP_DELAY: Duration = Duration::from_millis(5);

pub(super) fn digest_of(hash: &Hash) -> Digest {
    commonware_cryptography::sha256::Digest(hash.0)
}

pub(super) fn block_message(block: &Block) -> Vec<u8> {
    let mut bytes = vec![TAG_BLOCK];
    bytes.extend_from_slice(&tranche_types::commonware_codec::Encode::encode(block));
    bytes
}
