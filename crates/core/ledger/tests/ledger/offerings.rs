//! The primary market on the ledger (F5-3, F5-4, F5-6, F5-8, REC-8): an
//! offering paid in an escrow bank's deposit token, escrowed where nobody
//! moves it, closed into allocations (or refunds below the soft cap),
//! issued exactly as allocated, and released to the owner only after.

use crate::support::*;
use tranche_crypto::Keypair;
use tranche_ledger::*;
use tranche_types::*;

const CASH: &str = "USD-DEP";
/// Each test's window: opens now, closes in a day.
const DAY: u64 = 86_400_000;

struct Market {
    w: World,
    bank: Keypair,
    owner_wallet: Keypair,
    investors: Vec<Person>,
}

/// A world with an escrow bank and its deposit token, an appraised asset
/// (AP 100,000 USD), its owner's wallet, and `n` onboarded investors holding
/// `cash` minor units each.
fn market(n: u8, cash: u128) -> Market {
    let mut w = World::new();
    let bank = Keypair::from_seed(&[77; 32]);
    admit(&mut w, "escrow-bank", &bank, Some(Role::EscrowBank));
    w.ok(
        &bank,
        Payload::IssueCashToken(IssueCashToken {
            token: id(CASH),
            currency: Currency::known("USD").unwrap(),
        }),
    );
    w.register_asset("A-1", usd(10_000_000));
    w.appraise("A-1", usd(10_000_000));
    let owner_wallet = Keypair::from_seed(&[78; 32]);
    let owner_key = tranche_testkit::key(250);
    let chain: ChainId = id(tranche_testkit::world::CHAIN);
    let tsp = w.tsp.clone();
    w.ok(
        &tsp,
        Payload::RegisterWallet(Ledger::sign_binding(&chain, &owner_wallet, &owner_key)),
    );
    let investors: Vec<Person> = (1..=n).map(Person::new).collect();
    for p in &investors {
        w.onboard(p, "KR");
        if cash == 0 {
            continue;
        }
        w.ok(
            &bank,
            Payload::MintCash(MintCash {
                token: id(CASH),
                to: p.wallet(),
                amount: Units(cash),
            }),
        );
    }
    Market {
        w,
        bank,
        owner_wallet,
        investors,
    }
}

fn offer(m: &Market, soft_cap: u128) -> OpenOffering {
    OpenOffering {
        offering: id("O-1"),
        asset: id("A-1"),
        token: id("T-1"),
        unit_price: usd(10_000),
        amount: Units(1_000),
        min_units: Units(1),
        max_units: Units(800),
        soft_cap: Units(soft_cap),
        opens: m.w.ctx.time,
        closes: m.w.ctx.time.plus_ms(DAY),
        issuer: id("first-issuer"),
        bank: id("escrow-bank"),
        cash_token: id(CASH),
        issue_date: date("2026-01-01"),
        expiry_date: date("2030-12-31"),
        rules: default_rules(),
        lockup_until: None,
    }
}

fn subscribe(units: u128) -> Payload {
    Payload::Subscribe(Subscribe {
        offering: id("O-1"),
        units: Units(units),
    })
}

fn close(max: u32) -> Payload {
    Payload::CloseOffering(CloseOffering {
        offering: id("O-1"),
        max,
    })
}

fn issue(max: u32) -> Payload {
    Payload::IssueOffering(IssueOffering {
        offering: id("O-1"),
        max,
    })
}

fn escrow() -> WalletAddress {
    Ledger::escrow_wallet(&id("O-1"))
}

#[test]
fn f5_3_f5_6_f5_8_subscriptions_escrowed_issued_as_allocated_and_released_after_issuance() {
    let mut m = market(3, 100_000_000);
    let tsp = m.w.tsp.clone();
    m.w.ok(&tsp, Payload::OpenOffering(offer(&m, 500)));
    let [a, b, c] = [&m.investors[0], &m.investors[1], &m.investors[2]].map(|p| p.clone());
    m.w.ok(&a.key, subscribe(600));
    m.w.ok(&b.key, subscribe(399));
    m.w.ok(&c.key, subscribe(1));
    // REC-8: the money waits in escrow, where nobody's transfer takes it.
    assert_eq!(m.w.balance(CASH, &escrow()), 1_000 * 10_000);
    assert_eq!(m.w.balance(CASH, &a.wallet()), 100_000_000 - 600 * 10_000);
    let bank = m.bank.clone();
    m.w.rejects(
        &bank,
        Payload::ForcedTransfer(ForcedTransfer {
            token: id(CASH),
            from: escrow(),
            to: bank.address(),
            amount: Units(1),
            reason: Memo::new("take").unwrap(),
        }),
        RejectCode::EscrowLocked,
    );
    // Not before the window ends; the issuer not before the close.
    m.w.rejects(&tsp, close(10), RejectCode::OfferingNotDone);
    let issuer = m.w.issuer.clone();
    m.w.rejects(&issuer, issue(10), RejectCode::OfferingNotDone);
    m.w.advance_days(2);
    m.w.rejects(&c.key, subscribe(1), RejectCode::OfferingClosed);
    // Closed two subscriptions at a time: the same guarantees in parts.
    m.w.ok(&tsp, close(2));
    m.w.ok(&tsp, close(2));
    m.w.rejects(&tsp, close(2), RejectCode::AlreadyExists);
    // No release before issuance (SR-1).
    let release = Payload::ReleaseProceeds(ReleaseProceeds {
        offering: id("O-1"),
        to: m.owner_wallet.address(),
    });
    m.w.rejects(&bank, release.clone(), RejectCode::NotYetIssued);
    // Only the named issuer, exactly the allocations.
    let exchange = m.w.exchange.clone();
    m.w.rejects(&exchange, issue(10), RejectCode::MissingRole);
    m.w.ok(&issuer, issue(2));
    m.w.rejects(&bank, release.clone(), RejectCode::NotYetIssued);
    m.w.ok(&issuer, issue(2));
    m.w.rejects(&issuer, issue(2), RejectCode::RequestAlreadyExecuted);
    assert_eq!(
        [&a, &b, &c].map(|p| m.w.balance("T-1", &p.wallet())),
        [600, 399, 1]
    );
    // F5-8: to the owner's wallet, and only to it.
    m.w.rejects(
        &bank,
        Payload::ReleaseProceeds(ReleaseProceeds {
            offering: id("O-1"),
            to: a.wallet(),
        }),
        RejectCode::DifferentIdentity,
    );
    m.w.ok(&bank, release.clone());
    assert_eq!(m.w.balance(CASH, &m.owner_wallet.address()), 10_000_000);
    assert_eq!(m.w.balance(CASH, &escrow()), 0);
    m.w.rejects(&bank, release, RejectCode::AlreadyPaid);
    m.w.ledger.check_invariants();
}

#[test]
fn f5_6_an_oversubscribed_offering_is_scaled_down_by_the_integer_rule_and_the_excess_refunded() {
    let mut m = market(3, 100_000_000);
    let tsp = m.w.tsp.clone();
    m.w.ok(&tsp, Payload::OpenOffering(offer(&m, 500)));
    let ps: Vec<Person> = m.investors.clone();
    // 800 + 700 + 1 = 1,501 subscribed for 1,000.
    for (p, n) in ps.iter().zip([800, 700, 1]) {
        m.w.ok(&p.key, subscribe(n));
    }
    m.w.advance_days(2);
    m.w.ok(&tsp, close(1_000));
    let issuer = m.w.issuer.clone();
    m.w.ok(&issuer, issue(1_000));
    // floor(s × 1000 / 1501): 532, 466, 0; the 2 units left over are not issued.
    let got: Vec<u128> = ps.iter().map(|p| m.w.balance("T-1", &p.wallet())).collect();
    assert_eq!(got, [532, 466, 0]);
    for (p, (s, a)) in ps.iter().zip([(800u128, 532u128), (700, 466), (1, 0)]) {
        assert_eq!(
            m.w.balance(CASH, &p.wallet()),
            100_000_000 - a * 10_000,
            "refunded (s - a) × SP for s = {s}"
        );
    }
    assert_eq!(m.w.balance(CASH, &escrow()), 998 * 10_000);
    let check = m.w.ledger.offering(&id("O-1")).unwrap();
    assert_eq!(check.allocated, Units(998));
    m.w.ledger.check_invariants();
}

#[test]
fn f5_6_below_the_soft_cap_everyone_is_refunded_and_nothing_is_issued() {
    let mut m = market(2, 100_000_000);
    let tsp = m.w.tsp.clone();
    m.w.ok(&tsp, Payload::OpenOffering(offer(&m, 900)));
    let ps = m.investors.clone();
    m.w.ok(&ps[0].key, subscribe(300));
    m.w.ok(&ps[1].key, subscribe(200));
    m.w.advance_days(2);
    m.w.ok(&tsp, close(1));
    m.w.ok(&tsp, close(1));
    for p in &ps {
        assert_eq!(m.w.balance(CASH, &p.wallet()), 100_000_000);
    }
    let issuer = m.w.issuer.clone();
    m.w.rejects(&issuer, issue(10), RejectCode::OfferingNotDone);
    assert!(m.w.ledger.token(&id("T-1")).is_none());
}

#[test]
fn rec8_subscriptions_are_bounded_paid_and_compliant() {
    let mut m = market(2, 5_000_000);
    let tsp = m.w.tsp.clone();
    // The TSP's terms are checked as a request's are.
    let mut bad = offer(&m, 500);
    bad.unit_price = usd(30_000);
    m.w.rejects(&tsp, Payload::OpenOffering(bad), RejectCode::NotWholeTokens);
    let mut bad = offer(&m, 2_000);
    bad.offering = id("O-2");
    m.w.rejects(&tsp, Payload::OpenOffering(bad), RejectCode::InvalidField);
    let bank = m.bank.clone();
    m.w.rejects(
        &bank,
        Payload::OpenOffering(offer(&m, 500)),
        RejectCode::MissingRole,
    );
    m.w.ok(&tsp, Payload::OpenOffering(offer(&m, 500)));
    m.w.rejects(
        &tsp,
        Payload::OpenOffering(offer(&m, 500)),
        RejectCode::AlreadyExists,
    );
    let p = m.investors[0].clone();
    // Above the maximum per investor, in two steps as in one.
    m.w.rejects(&p.key, subscribe(801), RejectCode::SubscriptionOutOfBounds);
    m.w.rejects(&p.key, subscribe(0), RejectCode::SubscriptionOutOfBounds);
    // 5,000,000 minor units pay for 500 tokens, not 501.
    m.w.rejects(&p.key, subscribe(501), RejectCode::InsufficientBalance);
    m.w.ok(&p.key, subscribe(500));
    // A wallet bound to no identity cannot subscribe.
    let stranger = Keypair::from_seed(&[91; 32]);
    m.w.rejects(&stranger, subscribe(1), RejectCode::WalletNotRegistered);
}

#[test]
fn f5_9_a_funded_distribution_pays_holders_who_claim_or_are_paid_and_the_rest_is_reclaimed() {
    let mut m = market(3, 0);
    let [a, b, c] = [&m.investors[0], &m.investors[1], &m.investors[2]].map(|p| p.clone());
    m.w.tokenize("T", &[(&a, 600), (&b, 400)]);
    let tsp = declared(&mut m, 600_000, 500_000);
    let bank = m.bank.clone();
    let claim = Payload::ClaimDistribution(ClaimDistribution {
        distribution: id("D-1"),
        custodial_wallet: None,
    });
    m.w.rejects(&a.key, claim.clone(), RejectCode::NotFunded);
    let fund = |deadline: Timestamp| {
        Payload::FundDistribution(FundDistribution {
            distribution: id("D-1"),
            cash_token: id(CASH),
            deadline,
        })
    };
    let deadline = m.w.ctx.time.plus_ms(30 * DAY);
    m.w.rejects(&tsp, fund(m.w.ctx.time), RejectCode::InvalidField);
    m.w.ok(&tsp, fund(deadline));
    m.w.rejects(&tsp, fund(deadline), RejectCode::AlreadyExists);
    let pool = Ledger::distribution_pool(&id("D-1"));
    assert_eq!(m.w.balance(CASH, &pool), 500_000);
    assert_eq!(m.w.balance(CASH, &tsp.address()), 100_000);
    // The pool is as locked as an escrow.
    m.w.rejects(
        &bank,
        Payload::ForcedTransfer(ForcedTransfer {
            token: id(CASH),
            from: pool,
            to: bank.address(),
            amount: Units(1),
            reason: Memo::new("take").unwrap(),
        }),
        RejectCode::EscrowLocked,
    );
    // Alice claims her 60 %; the TSP pushes Bob's 40 %; once each.
    m.w.ok(&a.key, claim.clone());
    assert_eq!(m.w.balance(CASH, &a.wallet()), 300_000);
    m.w.rejects(&a.key, claim.clone(), RejectCode::AlreadyPaid);
    // Carol held nothing at the checkpoint: nothing to claim.
    m.w.rejects(&c.key, claim.clone(), RejectCode::NoEntitlement);
    // No reclaim while holders may still claim.
    let reclaim = Payload::ReclaimDistribution(ReclaimDistribution {
        distribution: id("D-1"),
    });
    m.w.rejects(&tsp, reclaim.clone(), RejectCode::ClaimPeriodOpen);
    m.w.advance_days(31);
    // After the deadline, Bob's unclaimed share goes back to the TSP.
    m.w.rejects(&b.key, claim, RejectCode::ClaimPeriodOver);
    m.w.ok(&tsp, reclaim.clone());
    m.w.rejects(&tsp, reclaim, RejectCode::ClaimPeriodOver);
    assert_eq!(m.w.balance(CASH, &pool), 0);
    assert_eq!(m.w.balance(CASH, &tsp.address()), 300_000);
    assert_eq!(m.w.balance(CASH, &b.wallet()), 0);
    m.w.ledger.check_invariants();
}

#[test]
fn f5_9_the_tsp_pushes_a_funded_share_out_of_the_pool() {
    let mut m = market(2, 0);
    let [a, b] = [&m.investors[0], &m.investors[1]].map(|p| p.clone());
    m.w.tokenize("T", &[(&a, 500), (&b, 500)]);
    let tsp = declared(&mut m, 1_000, 1_000);
    let deadline = m.w.ctx.time.plus_ms(DAY);
    m.w.ok(
        &tsp,
        Payload::FundDistribution(FundDistribution {
            distribution: id("D-1"),
            cash_token: id(CASH),
            deadline,
        }),
    );
    m.w.ok(
        &tsp,
        Payload::RecordPayment(RecordPayment {
            distribution: id("D-1"),
            wallet: b.wallet(),
        }),
    );
    assert_eq!(m.w.balance(CASH, &b.wallet()), 500);
    assert_eq!(
        m.w.balance(CASH, &Ledger::distribution_pool(&id("D-1"))),
        500
    );
    m.w.ledger.check_invariants();
}

#[test]
fn f5_9_sr3_a_custodian_claims_the_share_of_the_custodial_wallet_it_keeps() {
    let mut m = market(2, 0);
    let [a, b] = [&m.investors[0], &m.investors[1]].map(|p| p.clone());
    m.w.tokenize("T", &[(&a, 500), (&b, 500)]);
    let vault = m.w.entrust(&a, 200);
    let tsp = declared(&mut m, 1_000, 1_000);
    let deadline = m.w.ctx.time.plus_ms(DAY);
    m.w.ok(
        &tsp,
        Payload::FundDistribution(FundDistribution {
            distribution: id("D-1"),
            cash_token: id(CASH),
            deadline,
        }),
    );
    let claim = Payload::ClaimDistribution(ClaimDistribution {
        distribution: id("D-1"),
        custodial_wallet: Some(vault),
    });
    // Neither the holder nor another organisation claims for it.
    m.w.rejects(&a.key, claim.clone(), RejectCode::NotAdmitted);
    m.w.rejects(&tsp, claim.clone(), RejectCode::MissingRole);
    // Nor does a custodian claim for a wallet that is not a custodial one.
    let custodian = m.w.custodian.clone();
    let not_kept = Payload::ClaimDistribution(ClaimDistribution {
        distribution: id("D-1"),
        custodial_wallet: Some(b.wallet()),
    });
    m.w.rejects(&custodian, not_kept, RejectCode::UnknownCustodialWallet);
    // Its custodian does: the share lands in the custodial wallet, once.
    m.w.ok(&custodian, claim.clone());
    assert_eq!(m.w.balance(CASH, &vault), 200);
    m.w.rejects(&custodian, claim, RejectCode::AlreadyPaid);
    m.w.ledger.check_invariants();
}

/// Binds the TSP's wallet to a DID of its own, has the bank mint it `cash`
/// deposit units, checkpoints `T` and declares `D-1` of `total` over it.
fn declared(m: &mut Market, cash: u128, total: u128) -> Keypair {
    let tsp = tsp_with_cash(m, cash);
    m.w.ok(
        &tsp,
        Payload::CreateCheckpoint(CreateCheckpoint { token: id("T") }),
    );
    m.w.ok(
        &tsp,
        Payload::DeclareDistribution(DeclareDistribution {
            distribution: id("D-1"),
            token: id("T"),
            checkpoint: 1,
            total: usd(total),
        }),
    );
    tsp
}

/// The TSP's wallet bound to a DID of its own, holding `cash` deposit units.
fn tsp_with_cash(m: &mut Market, cash: u128) -> Keypair {
    let tsp = m.w.tsp.clone();
    let chain: ChainId = id(tranche_testkit::world::CHAIN);
    let tsp_did_key = Keypair::from_seed(&[79; 32]);
    m.w.ok(
        &tsp,
        Payload::RegisterWallet(Ledger::sign_binding(&chain, &tsp, &tsp_did_key)),
    );
    let bank = m.bank.clone();
    m.w.ok(
        &bank,
        Payload::MintCash(MintCash {
            token: id(CASH),
            to: tsp.address(),
            amount: Units(cash),
        }),
    );
    tsp
}

#[test]
fn f5_10_a_redemption_pays_each_holder_in_the_transaction_that_revokes_its_units() {
    let mut m = market(2, 0);
    let [a, b] = [&m.investors[0], &m.investors[1]].map(|p| p.clone());
    m.w.tokenize("T", &[(&a, 600), (&b, 400)]);
    // The asset sold for 150 USD a token: 150,000 USD for the 1,000.
    let tsp = tsp_with_cash(&mut m, 15_000_000);
    let redeem = |request: &str, price: u128| {
        Payload::RequestRevocation(RequestRevocation {
            request: id(request),
            token: id("T"),
            amount: Units(1_000),
            redemption: Some(Redemption {
                cash_token: id(CASH),
                unit_price: usd(price),
            }),
        })
    };
    m.w.rejects(&tsp, redeem("V-0", 15_001), RejectCode::InsufficientBalance);
    m.w.ok(&tsp, redeem("V-1", 15_000));
    let pool = Ledger::redemption_pool(&id("V-1"));
    assert_eq!(m.w.balance(CASH, &pool), 15_000_000);
    assert_eq!(m.w.balance(CASH, &tsp.address()), 0);
    let issuer = m.w.issuer.clone();
    m.w.ok(
        &issuer,
        Payload::ExecuteRevocation(ExecuteRevocation {
            request: id("V-1"),
            moves: BoundedVec(vec![
                Allocation {
                    wallet: a.wallet(),
                    amount: Units(600),
                    lockup_until: None,
                },
                Allocation {
                    wallet: b.wallet(),
                    amount: Units(400),
                    lockup_until: None,
                },
            ]),
        }),
    );
    assert_eq!(m.w.balance(CASH, &a.wallet()), 9_000_000);
    assert_eq!(m.w.balance(CASH, &b.wallet()), 6_000_000);
    assert_eq!(m.w.balance(CASH, &pool), 0);
    assert_eq!(m.w.balance("T", &a.wallet()), 0);
    m.w.ledger.check_invariants();
}

#[test]
fn deposit_tokens_are_redeemed_by_their_holder_only_out_of_circulation() {
    let mut m = market(2, 50_000);
    let [a, b] = [&m.investors[0], &m.investors[1]].map(|p| p.clone());
    let redeem = |amount| {
        Payload::RedeemCash(RedeemCash {
            token: id(CASH),
            amount: Units(amount),
        })
    };
    // The holder's own key for the holder's own wallet; within its balance.
    m.w.rejects(&a.key, redeem(50_001), RejectCode::InsufficientBalance);
    m.w.rejects(&a.key, redeem(0), RejectCode::ZeroAmount);
    m.w.ok(&a.key, redeem(20_000));
    assert_eq!(m.w.balance(CASH, &a.wallet()), 30_000);
    assert_eq!(m.w.balance(CASH, &b.wallet()), 50_000);
    let t = m.w.ledger.state().tokens[&id::<TokenId>(CASH)].clone();
    assert_eq!((t.issued.0, t.revoked.0), (100_000, 20_000));
    // Out of circulation for good: nobody moves it back.
    let bank = m.bank.clone();
    let out = Ledger::revocation_wallet(&id(CASH));
    m.w.rejects(
        &bank,
        Payload::ForcedTransfer(ForcedTransfer {
            token: id(CASH),
            from: out,
            to: a.wallet(),
            amount: Units(1),
            reason: Memo::new("back").unwrap(),
        }),
        RejectCode::RevocationWalletLocked,
    );
    // A wallet bound to no DID has nothing a bank could pay out to.
    m.w.rejects(
        &Keypair::from_seed(&[99; 32]),
        redeem(1),
        RejectCode::WalletNotRegistered,
    );
    // Security tokens are not cash.
    m.w.tokenize("S", &[(&b, 1_000)]);
    m.w.rejects(
        &b.key,
        Payload::RedeemCash(RedeemCash {
            token: id("S"),
            amount: Units(1),
        }),
        RejectCode::InvalidField,
    );
    m.w.ledger.check_invariants();
}

#[test]
fn f5_6_lock_ups_per_allocation_an_offering_locks_what_it_issues_until_its_day() {
    let mut m = market(2, 100_000_000);
    let tsp = m.w.tsp.clone();
    let mut terms = offer(&m, 500);
    // Issued on 2026-01-03 (two days on); locked for a week after.
    terms.lockup_until = Some(date("2026-01-10"));
    m.w.ok(&tsp, Payload::OpenOffering(terms));
    let [a, b] = [&m.investors[0], &m.investors[1]].map(|p| p.clone());
    // Two subscriptions from one wallet: one lock-up for both.
    m.w.ok(&a.key, subscribe(300));
    m.w.ok(&a.key, subscribe(300));
    m.w.ok(&b.key, subscribe(400));
    m.w.advance_days(2);
    m.w.ok(&tsp, close(10));
    let issuer = m.w.issuer.clone();
    m.w.ok(&issuer, issue(10));
    assert_eq!(m.w.balance("T-1", &a.wallet()), 600);
    // Every unit issued from the offering waits.
    let r =
        m.w.rejects(&a.key, m.w.transfer("T-1", &b, 1), RejectCode::LockedUp);
    assert!(r.message.contains("2026-01-10"), "{}", r.message);
    m.w.rejects(&b.key, m.w.transfer("T-1", &a, 400), RejectCode::LockedUp);
    m.w.ledger.check_invariants();
    // On its day, they move.
    m.w.advance_days(7);
    m.w.ok(&a.key, m.w.transfer("T-1", &b, 600));
    assert_eq!(m.w.balance("T-1", &b.wallet()), 1_000);
    m.w.ledger.check_invariants();
}
