//! Builds the fixtures tests, simulations and benchmarks share: keys from
//! seeds, genesis ledgers, and signed transactions, among them a person's
//! wallet binding with its consent. Deterministic: the same seeds give the
//! same keys, transactions and state roots.

pub mod world;

use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation, Ledger};
use tranche_types::{
    ChainId, OrgId, Payload, Role, SignedTransaction, Stake, Timestamp, Transaction,
};

/// The key whose seed is 32 bytes of `n`.
pub fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

/// The key whose seed begins with `n`'s big-endian bytes after `fill`.
pub fn numbered_key(fill: u8, n: u64) -> Keypair {
    let mut seed = [fill; 32];
    seed[..8].copy_from_slice(&n.to_be_bytes());
    Keypair::from_seed(&seed)
}

/// A chain of one governing organisation `org` signing with `key`, holding
/// `roles`, with `bond` stake bonded behind that key.
pub fn one_org_ledger(
    chain_id: &str,
    org: &str,
    key: &Keypair,
    roles: Vec<Role>,
    bond: u128,
) -> Ledger {
    Ledger::genesis(&Genesis {
        epoch_blocks: None,
        committee_max: None,
        appraisal_tolerance_bps: None,
        chain_id: chain_id.parse().expect("a valid chain id"),
        organisations: vec![GenesisOrganisation {
            org: org.parse::<OrgId>().expect("a valid organisation id"),
            key: key.public_key(),
            roles,
            governor: true,
            stake: Stake(bond),
            bond: Stake(bond),
        }],
    })
    .expect("a valid genesis")
}

/// `payload` signed by `signer` with `nonce`, valid until `valid_until`.
pub fn signed(
    chain_id: &str,
    signer: &Keypair,
    nonce: u64,
    valid_until: Timestamp,
    payload: Payload,
) -> SignedTransaction {
    let tx = Transaction {
        chain_id: chain_id.parse().expect("a valid chain id"),
        signer: signer.public_key(),
        nonce,
        valid_until,
        payload,
    };
    sign_transaction(signer, tx).expect("the signer's own transaction")
}

/// `onboarder` binding the wallet of `person` to the person's own did:key,
/// with the person's consent, as its transaction `nonce`.
pub fn register_wallet(
    chain_id: &str,
    onboarder: &Keypair,
    nonce: u64,
    valid_until: Timestamp,
    person: &Keypair,
) -> SignedTransaction {
    let chain: ChainId = chain_id.parse().expect("a valid chain id");
    let binding = Ledger::sign_binding(&chain, person, person);
    signed(
        chain_id,
        onboarder,
        nonce,
        valid_until,
        Payload::RegisterWallet(binding),
    )
}
