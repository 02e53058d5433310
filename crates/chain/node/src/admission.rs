//! Which peers the p2p network lets in (C-1): of the nodes configured under
//! `[[peers]]`, those whose keys the chain admits, followed block by block.
//!
//! The network connects only to the peers of the set it tracks, refuses
//! every other key at the handshake, and drops a connected peer the moment
//! a new set leaves it out; tracking one set at a time makes a removal take
//! effect at once.

use commonware_cryptography::ed25519;
use commonware_p2p::Address;
use commonware_utils::ordered::Map;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use tranche_ledger::Ledger;
use tranche_types::PublicKey;

/// The peers to track, as the chain admits them.
#[derive(Debug)]
pub(crate) struct Admission {
    me: (PublicKey, ed25519::PublicKey, SocketAddr),
    configured: Vec<(PublicKey, ed25519::PublicKey, SocketAddr)>,
    /// The configured peers admitted when the set was last tracked.
    admitted: Option<BTreeSet<PublicKey>>,
}

impl Admission {
    /// This node (always in its own set) and the peers of its configuration.
    pub(crate) fn new(
        me: (PublicKey, ed25519::PublicKey, SocketAddr),
        configured: Vec<(PublicKey, ed25519::PublicKey, SocketAddr)>,
    ) -> Admission {
        Admission {
            me,
            configured,
            admitted: None,
        }
    }

    /// The peer set to track once `ledger` is the chain's state, if it
    /// differs from the one tracked last (or none was).
    pub(crate) fn update(&mut self, ledger: &Ledger) -> Option<Map<ed25519::PublicKey, Address>> {
        let on_chain = ledger.admitted_peers();
        let admitted: BTreeSet<PublicKey> = self
            .configured
            .iter()
            .map(|(key, _, _)| *key)
            .filter(|key| on_chain.contains(key))
            .collect();
        if self.admitted.as_ref() == Some(&admitted) {
            return None;
        }
        for (key, _, address) in &self.configured {
            let was = self.admitted.as_ref().is_none_or(|a| a.contains(key));
            if was && !admitted.contains(key) {
                tracing::warn!(peer = %key, %address, "a peer under [[peers]] is not admitted by the chain: its connections are refused");
            } else if !was && admitted.contains(key) {
                tracing::info!(peer = %key, %address, "a peer under [[peers]] is admitted by the chain");
            }
        }
        let peers: Vec<(ed25519::PublicKey, Address)> = std::iter::once(&self.me)
            .chain(
                self.configured
                    .iter()
                    .filter(|(k, _, _)| admitted.contains(k)),
            )
            .map(|(_, key, address)| (key.clone(), Address::from(*address)))
            .collect();
        self.admitted = Some(admitted);
        Some(
            peers
                .try_into()
                .expect("peer keys are distinct (the configuration checks)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranche_testkit::world::{revoke_role, World};

    fn entry(key: PublicKey, port: u16) -> (PublicKey, ed25519::PublicKey, SocketAddr) {
        use tranche_types::commonware_codec::DecodeExt as _;
        let consensus =
            ed25519::PublicKey::decode(tranche_types::commonware_codec::Copying(key.0.as_slice()))
                .expect("an ed25519 key");
        (key, consensus, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn only_configured_peers_the_chain_admits_are_tracked_and_a_removal_is_a_new_set() {
        let mut w = World::new();
        let tsp = w.tsp.public_key();
        let kyc = w
            .ledger
            .organisation(&"kyc-co".parse().unwrap())
            .unwrap()
            .key;
        let stranger = tranche_testkit::key(77).public_key();
        let mut admission = Admission::new(
            entry(w.issuer.public_key(), 1),
            vec![entry(tsp, 2), entry(kyc, 3), entry(stranger, 4)],
        );
        let keys = |set: &Map<ed25519::PublicKey, Address>| -> Vec<SocketAddr> {
            let mut ports: Vec<SocketAddr> = set
                .values()
                .iter()
                .map(|a| match a {
                    Address::Symmetric(s) => *s,
                    other => panic!("a plain address, not {other:?}"),
                })
                .collect();
            ports.sort();
            ports
        };
        let port = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        // The stranger is configured, not admitted.
        let first = admission.update(&w.ledger).expect("the first set");
        assert_eq!(keys(&first), [port(1), port(2), port(3)]);
        // Nothing changed on chain: nothing to track again.
        assert!(admission.update(&w.ledger).is_none());
        // Governance revokes the KYC provider's only role: it is dropped.
        revoke_role(&mut w, "kyc-co", tranche_types::Role::ClaimIssuer);
        let second = admission.update(&w.ledger).expect("a new set");
        assert_eq!(keys(&second), [port(1), port(2)]);
    }
}
