//! The ledger's invariants (see the crate documentation): checked after
//! every transaction in debug builds and by the property tests.

use crate::compliance::balance;
use crate::state::{HoldState, OfferingPhase};
use crate::{address, apply, Ledger};
use tranche_types::{Did, TokenId, Units, WalletAddress};

impl Ledger {
    /// Panics if an invariant is broken (see the crate documentation).
    pub fn check_invariants(&self) {
        let s = &self.state;
        let mut sums: std::collections::BTreeMap<&TokenId, (Units, u32)> = Default::default();
        for ((token, wallet), units) in &s.balances {
            assert!(!units.is_zero(), "zero balances are not kept");
            let entry = sums.entry(token).or_insert((Units::ZERO, 0));
            entry.0 = entry.0.checked_add(*units).expect("supply fits");
            if *wallet != apply::revocation_wallet(token) {
                entry.1 += 1;
            }
        }
        for (id, t) in &s.tokens {
            let (sum, holders) = sums.get(id).copied().unwrap_or((Units::ZERO, 0));
            assert_eq!(
                sum, t.issued,
                "token {id}: balances add up to the issued supply"
            );
            let in_revocation = balance(s, id, &apply::revocation_wallet(id));
            assert_eq!(
                in_revocation, t.revoked,
                "token {id}: the revocation wallet holds what was revoked"
            );
            assert_eq!(holders, t.holders, "token {id}: holder count");
        }
        for ((token, wallet), f) in &s.freezes {
            let held = balance(s, token, wallet);
            assert!(
                f.amount <= held,
                "token {token}: wallet {wallet} has {} frozen of the {held} it holds",
                f.amount
            );
        }
        // Holds: every open hold is listed on its wallet, every listed one
        // is open, and what a wallet's holds hold fits in its balance.
        for ((token, wallet), listed) in &s.wallet_holds {
            assert!(!listed.is_empty(), "empty hold lists are not kept");
            let mut total = Units::ZERO;
            for id in listed.iter() {
                let h = &s.holds[id];
                assert!(
                    h.state == HoldState::Open && h.token == *token && h.wallet == *wallet,
                    "hold {id} is listed on its own open wallet"
                );
                total = total.checked_add(h.amount).expect("holds fit");
            }
            let held = balance(s, token, wallet);
            assert!(
                total <= held,
                "token {token}: wallet {wallet} has {total} on hold of the {held} it holds"
            );
        }
        for (id, h) in &s.holds {
            if h.state == HoldState::Open {
                assert!(
                    s.wallet_holds
                        .get(&(h.token.clone(), h.wallet))
                        .is_some_and(|l| l.contains(id)),
                    "open hold {id} is listed"
                );
            }
        }
        // Holder identities: every wallet holding a token counts for the
        // identity it is bound to, and each identity once.
        let mut identities: std::collections::BTreeMap<(TokenId, Did), u32> = Default::default();
        for ((token, wallet), _) in &s.balances {
            if *wallet == apply::revocation_wallet(token) {
                continue;
            }
            if let Some(did) = s.wallets.get(wallet) {
                *identities.entry((token.clone(), did.clone())).or_default() += 1;
            }
        }
        let kept: std::collections::BTreeMap<(TokenId, Did), u32> = s
            .identity_holdings
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        assert_eq!(
            kept, identities,
            "each identity's holding wallets are counted"
        );
        for (id, t) in &s.tokens {
            let n = identities.keys().filter(|(tk, _)| tk == id).count();
            assert_eq!(
                n, t.holder_identities as usize,
                "token {id}: holder identities"
            );
        }
        for ((token, wallet), l) in &s.lockups {
            let held = balance(s, token, wallet);
            assert!(
                !l.units.is_zero() && l.units <= held,
                "token {token}: wallet {wallet} has {} locked up of the {held} it holds",
                l.units
            );
        }
        for (id, o) in &s.offerings {
            // REC-8: the escrow holds what is still owed to subscribers or
            // to the owner — nothing more, nothing less.
            let price = o.terms.unit_price.minor.0;
            let (mut owed, mut credited) = (0u128, 0u128);
            for ((of, seq), sub) in s.subscriptions.range((id.clone(), 0)..) {
                if of != id {
                    break;
                }
                let kept = if *seq < o.processed {
                    sub.allocated
                } else {
                    sub.units
                };
                owed += kept.0 * price;
                if *seq < o.issued {
                    credited += sub.allocated.0;
                }
            }
            if o.phase == OfferingPhase::Released {
                owed = 0;
            }
            let escrow = balance(s, &o.terms.cash_token, &address::escrow_wallet(id));
            assert_eq!(
                escrow.0, owed,
                "offering {id}: its escrow holds what it owes"
            );
            if o.issued > 0 {
                let issued = s.tokens.get(&o.terms.token).map_or(0, |t| t.issued.0);
                assert_eq!(
                    issued, credited,
                    "offering {id}: issued what its batches credited"
                );
            }
        }
        for (id, r) in &s.revocations {
            if let Some(red) = &r.redemption {
                // F5-10: the pool holds the proceeds until the revocation pays them.
                let pool = s
                    .balances
                    .get(&(red.cash_token.clone(), address::redemption_pool(id)))
                    .map_or(0, |u| u.0);
                let owed = if r.revoked.is_some() {
                    0
                } else {
                    r.amount.0 * red.unit_price.minor.0
                };
                assert_eq!(
                    pool, owed,
                    "redemption {id}: its pool holds the unpaid proceeds"
                );
            }
        }
        for (id, f) in &s.distribution_funds {
            // F5-9: a pool holds exactly the unpaid entitlements until reclaimed.
            let unpaid: u128 = s
                .entitlements
                .range((id.clone(), WalletAddress([0; 20]))..)
                .take_while(|((d, _), _)| d == id)
                .filter(|(_, e)| !e.paid)
                .map(|(_, e)| e.amount.0)
                .sum();
            let pool = s
                .balances
                .get(&(f.cash_token.clone(), address::distribution_pool(id)))
                .map_or(0, |u| u.0);
            let owed = if f.reclaimed { 0 } else { unpaid };
            assert_eq!(
                pool, owed,
                "distribution {id}: its pool holds what is unclaimed"
            );
        }
        for (id, r) in &s.issuances {
            if let Some(issued) = r.issued {
                let sum = r
                    .terms
                    .allocations
                    .iter()
                    .try_fold(Units::ZERO, |a, x| a.checked_add(x.amount))
                    .expect("allocations fit");
                assert_eq!(issued, sum, "issuance {id}: issued equals its allocations");
                assert_eq!(
                    issued, r.terms.amount,
                    "issuance {id}: issued equals requested"
                );
            }
        }
        for (id, r) in &s.revocations {
            if let Some(revoked) = r.revoked {
                assert_eq!(
                    revoked, r.amount,
                    "revocation {id}: revoked equals requested"
                );
            }
        }
        for (id, o) in &s.orgs {
            assert!(
                !apply::violates_separation(o.roles),
                "{id}: separation of duties"
            );
        }
    }
}
