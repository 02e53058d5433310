//! Limits by identity: the holder count counts identities (DIDs), kept by
//! the ledger; an identity's share of the supply is capped on transfers
//! (issuance and redemption excepted); the agent exempts named identities.

use crate::support::*;
use tranche_types::*;

fn world(rules: TokenRules) -> (World, Person, Person, Person) {
    let mut w = World::new();
    let (a, b, c) = (Person::new(1), Person::new(2), Person::new(3));
    for p in [&a, &b, &c] {
        w.onboard(p, "KR");
    }
    w.issue("T", &[(&a, 600), (&b, 400)], rules);
    (w, a, b, c)
}

fn exempt(did: &Did, exempt: bool) -> Payload {
    Payload::SetLimitExemption(SetLimitExemption {
        token: id("T"),
        did: did.clone(),
        exempt,
    })
}

#[test]
fn limits_by_identity_the_holder_count_counts_identities_not_wallets() {
    let mut rules = default_rules();
    rules.max_holders = 2;
    let (mut w, a, b, c) = world(rules);
    let identities = |w: &World| w.ledger.token(&id("T")).unwrap().holder_identities;
    assert_eq!(identities(&w), 2);
    // Alice's second wallet adds no holder.
    let second = a.other_wallet(42);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(second.binding()));
    w.ok(&a.key, w.transfer("T", &second, 100));
    assert_eq!(
        (identities(&w), w.ledger.token(&id("T")).unwrap().holders),
        (2, 3)
    );
    // Carol would be a third identity.
    let r = w.rejects(
        &a.key,
        w.transfer("T", &c, 1),
        RejectCode::MaxHoldersReached,
    );
    assert!(r.message.contains("2 identities"), "{r}");
    // Bob leaving makes room for her.
    w.ok(&b.key, w.transfer("T", &c, 400));
    assert_eq!(identities(&w), 2);
    // Alice emptying one of her wallets does not: her other one still holds.
    w.ok(&second.key, w.transfer("T", &a, 100));
    assert_eq!(identities(&w), 2);
    // An exempted identity may join beyond the count.
    let d = Person::new(4);
    w.onboard(&d, "KR");
    w.rejects(
        &w.tsp.clone(),
        exempt(&d.did, true),
        RejectCode::NotTokenAgent,
    );
    w.ok(&w.issuer.clone(), exempt(&d.did, true));
    w.ok(&a.key, w.transfer("T", &d, 10));
    assert_eq!(identities(&w), 3);
}

#[test]
fn limits_by_identity_an_ownership_share_caps_transfers_not_issuance() {
    let mut rules = default_rules();
    rules.max_ownership_bps = 5_000;
    // Issued 60 % to alice: issuance is excepted.
    let (mut w, a, b, c) = world(rules);
    let r = w.rejects(
        &b.key,
        w.transfer("T", &a, 1),
        RejectCode::OwnershipLimitExceeded,
    );
    assert!(r.message.contains("5000 basis points"), "{r}");
    // Carol may take up to half of the 1,000 circulating.
    w.ok(&b.key, w.transfer("T", &c, 400));
    w.rejects(
        &a.key,
        w.transfer("T", &c, 101),
        RejectCode::OwnershipLimitExceeded,
    );
    w.ok(&a.key, w.transfer("T", &c, 100));
    // Exempted (a market maker, say), alice may hold more again; the
    // exemption ends when the agent says.
    w.ok(&w.issuer.clone(), exempt(&a.did, true));
    w.ok(&c.key, w.transfer("T", &a, 200));
    w.ok(&w.issuer.clone(), exempt(&a.did, false));
    w.rejects(
        &c.key,
        w.transfer("T", &a, 1),
        RejectCode::OwnershipLimitExceeded,
    );
}

#[test]
fn limits_by_identity_an_exempted_identity_sends_beyond_the_transfer_limit() {
    let mut rules = default_rules();
    rules.transfer_limit = Some(TransferLimit {
        max: Units(10),
        period: LimitPeriod::Rolling,
        days: 1,
    });
    let (mut w, a, b, _) = world(rules);
    w.rejects(
        &a.key,
        w.transfer("T", &b, 11),
        RejectCode::TransferLimitExceeded,
    );
    w.ok(&w.issuer.clone(), exempt(&a.did, true));
    w.ok(&a.key, w.transfer("T", &b, 11));
}
