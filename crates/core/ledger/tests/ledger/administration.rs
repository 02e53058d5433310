//! Token administration over a token's life: rules replaced (each version
//! kept) and suspended, trusted claim issuers per topic, documents with
//! their history, pre-approved transfers, and the pre-check that gives
//! every reason a transfer would be refused.

use crate::support::*;
use tranche_ledger::*;
use tranche_types::*;

/// alice (KR) holds 600 and bob (US) 400 of `T`, which needs KYC.
pub(crate) fn issued() -> (World, Person, Person) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "US");
    w.issue("T", &[(&a, 600), (&b, 400)], default_rules());
    (w, a, b)
}

fn set_rules(rules: TokenRules) -> Payload {
    Payload::SetTokenRules(SetTokenRules {
        token: id("T"),
        rules,
    })
}

fn suspend(suspended: bool) -> Payload {
    Payload::SetRuleChecks(SetRuleChecks {
        token: id("T"),
        suspended,
    })
}

fn approve(from: &Person, to: &Person, amount: u128) -> Payload {
    Payload::ApproveTransfer(ApproveTransfer {
        token: id("T"),
        from: from.wallet(),
        to: to.wallet(),
        amount: Units(amount),
    })
}

pub(crate) fn codes(w: &World, from: &Person, to: &Person, amount: u128) -> Vec<RejectCode> {
    w.ledger
        .transfer_reasons(
            &w.ctx,
            &id("T"),
            &from.wallet(),
            &to.wallet(),
            Units(amount),
        )
        .into_iter()
        .map(|r| r.code)
        .collect()
}

#[test]
fn rules_over_time_the_agent_replaces_them_and_every_version_is_kept() {
    let (mut w, a, b) = issued();
    let issued_at = w.ledger.token(&id("T")).unwrap().rules_since;
    // Only the agent changes the rules.
    w.rejects(
        &w.tsp.clone(),
        set_rules(default_rules()),
        RejectCode::NotTokenAgent,
    );
    let mut contradictory = default_rules();
    contradictory.allowed_countries = BoundedVec(vec![CountryCode::new("KR").unwrap()]);
    contradictory.denied_countries = BoundedVec(vec![CountryCode::new("KR").unwrap()]);
    w.rejects(
        &w.issuer.clone(),
        set_rules(contradictory),
        RejectCode::InvalidField,
    );
    // Before: bob (US) may receive. The new rules allow Korea only.
    assert!(codes(&w, &a, &b, 5).is_empty());
    let mut korea = default_rules();
    korea.allowed_countries = BoundedVec(vec![CountryCode::new("KR").unwrap()]);
    let changed_at = w.ctx.height;
    w.ok(&w.issuer.clone(), set_rules(korea.clone()));
    let r = w.rejects(
        &a.key,
        w.transfer("T", &b, 5),
        RejectCode::CountryNotAllowed,
    );
    assert!(r.message.contains("US"), "{r}");
    // Both sides are held to the rules in force: bob cannot give either,
    // and alice may give to another Korean resident.
    w.rejects(
        &b.key,
        w.transfer("T", &a, 5),
        RejectCode::CountryNotAllowed,
    );
    let carol = Person::new(3);
    w.onboard(&carol, "KR");
    w.ok(&a.key, w.transfer("T", &carol, 5));
    let t = w.ledger.token(&id("T")).unwrap();
    assert_eq!((t.rules_version, t.rules_since), (1, changed_at));
    assert_eq!(t.rules, korea);
    let earlier: Vec<_> = w.ledger.rule_versions(&id("T")).collect();
    assert_eq!(earlier.len(), 1);
    assert_eq!(earlier[0].0, 0);
    assert_eq!(earlier[0].1.rules, default_rules());
    assert_eq!(
        (earlier[0].1.since, earlier[0].1.until),
        (issued_at, changed_at)
    );
    // Back to the first rules: version 2, and both earlier versions kept.
    w.ok(&w.issuer.clone(), set_rules(default_rules()));
    w.ok(&a.key, w.transfer("T", &b, 5));
    assert_eq!(w.ledger.rule_versions(&id("T")).count(), 2);
    assert_eq!(w.ledger.token(&id("T")).unwrap().rules_version, 2);
}

#[test]
fn rules_over_time_suspended_checks_skip_claims_never_the_binding_or_freezes() {
    let (mut w, a, _) = issued();
    // carol is bound to her DID but has no KYC claim.
    let carol = Person::new(3);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(carol.binding()));
    w.rejects(
        &a.key,
        w.transfer("T", &carol, 5),
        RejectCode::IdentityNotVerified,
    );
    w.rejects(&w.tsp.clone(), suspend(true), RejectCode::NotTokenAgent);
    w.rejects(&a.key, suspend(true), RejectCode::NotAdmitted);
    w.ok(&w.issuer.clone(), suspend(true));
    assert!(w.ledger.token(&id("T")).unwrap().rules_suspended);
    assert!(w.events.iter().any(|e| matches!(
        e,
        LedgerEvent::AgentAction { action, .. } if action == "suspend_rules"
    )));
    w.ok(&a.key, w.transfer("T", &carol, 5));
    // The identity binding still holds: dave is bound to nobody.
    let dave = Person::new(4);
    w.rejects(
        &a.key,
        w.transfer("T", &dave, 5),
        RejectCode::WalletNotRegistered,
    );
    // So do the agent's freezes.
    w.ok(
        &w.issuer.clone(),
        Payload::SetFrozen(SetFrozen {
            token: id("T"),
            wallet: carol.wallet(),
            frozen: true,
        }),
    );
    w.rejects(&a.key, w.transfer("T", &carol, 5), RejectCode::WalletFrozen);
    w.ok(
        &w.issuer.clone(),
        Payload::SetFrozen(SetFrozen {
            token: id("T"),
            wallet: carol.wallet(),
            frozen: false,
        }),
    );
    // Resumed: carol's missing claim counts again.
    w.ok(&w.issuer.clone(), suspend(false));
    w.rejects(
        &a.key,
        w.transfer("T", &carol, 5),
        RejectCode::IdentityNotVerified,
    );
}

#[test]
fn trusted_issuers_a_claim_from_an_untrusted_issuer_does_not_count_for_the_token() {
    let (mut w, a, b) = issued();
    // A second claim issuer, whose KYC claims the token will not trust.
    let other = tranche_testkit::key(30);
    admit(&mut w, "other-kyc", &other, Some(Role::ClaimIssuer));
    let carol = Person::new(3);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(carol.binding()));
    w.ok(&other, claim(&carol.did, ClaimTopic::KYC, None));
    w.ok(&a.key, w.transfer("T", &carol, 5));
    let trust = |issuers: Vec<&str>| {
        Payload::SetTrustedIssuers(SetTrustedIssuers {
            token: id("T"),
            topic: ClaimTopic::KYC,
            issuers: BoundedVec(issuers.into_iter().map(id).collect()),
        })
    };
    w.rejects(
        &w.tsp.clone(),
        trust(vec!["kyc-co"]),
        RejectCode::NotTokenAgent,
    );
    w.rejects(
        &w.issuer.clone(),
        trust(vec!["appraise-co"]),
        RejectCode::NotClaimIssuer,
    );
    w.rejects(
        &w.issuer.clone(),
        trust(vec!["nobody"]),
        RejectCode::UnknownOrganisation,
    );
    w.rejects(
        &w.issuer.clone(),
        trust(vec!["kyc-co", "kyc-co"]),
        RejectCode::InvalidField,
    );
    w.ok(&w.issuer.clone(), trust(vec!["kyc-co"]));
    // carol's KYC is other-kyc's: it no longer counts for T, either way.
    let r = w.rejects(
        &a.key,
        w.transfer("T", &carol, 5),
        RejectCode::IdentityNotVerified,
    );
    assert!(r.message.contains(carol.did.as_str()), "{r}");
    w.rejects(
        &carol.key,
        w.transfer("T", &a, 1),
        RejectCode::IdentityNotVerified,
    );
    // kyc-co's claims about alice and bob still do.
    w.ok(&a.key, w.transfer("T", &b, 5));
    let trusted: Vec<_> = w.ledger.trusted_issuers(&id("T")).collect();
    assert_eq!(trusted.len(), 1);
    assert_eq!(trusted[0].0, ClaimTopic::KYC);
    assert_eq!(trusted[0].1 .0, vec![id::<OrgId>("kyc-co")]);
    // An empty list trusts every claim issuer again.
    w.ok(&w.issuer.clone(), trust(vec![]));
    w.ok(&a.key, w.transfer("T", &carol, 5));
    assert_eq!(w.ledger.trusted_issuers(&id("T")).count(), 0);
}

#[test]
fn documents_are_attached_replaced_and_removed_with_their_history() {
    let (mut w, _, _) = issued();
    let set = |name: &str, uri: &str, digest: u8| {
        Payload::SetDocument(SetDocument {
            token: id("T"),
            name: id(name),
            uri: id(uri),
            digest: Hash([digest; 32]),
        })
    };
    let remove = |name: &str| {
        Payload::RemoveDocument(RemoveDocument {
            token: id("T"),
            name: id(name),
        })
    };
    w.rejects(
        &w.tsp.clone(),
        set("prospectus", "https://acme.example/p1.pdf", 1),
        RejectCode::NotTokenAgent,
    );
    let first = w.ctx.height;
    w.ok(
        &w.issuer.clone(),
        set("prospectus", "https://acme.example/p1.pdf", 1),
    );
    w.ok(&w.issuer.clone(), set("terms", "ipfs://bafy-terms", 2));
    let replaced = w.ctx.height;
    w.ok(
        &w.issuer.clone(),
        set("prospectus", "https://acme.example/p2.pdf", 3),
    );
    let now: Vec<_> = w.ledger.documents(&id("T")).collect();
    assert_eq!(now.len(), 2);
    assert_eq!(now[0].0.as_str(), "prospectus");
    assert_eq!(now[0].1.uri.as_str(), "https://acme.example/p2.pdf");
    assert_eq!(
        (now[0].1.digest, now[0].1.height),
        (Hash([3; 32]), replaced)
    );
    w.rejects(
        &w.issuer.clone(),
        remove("nothing"),
        RejectCode::UnknownDocument,
    );
    let removed = w.ctx.height;
    w.ok(&w.issuer.clone(), remove("terms"));
    assert_eq!(w.ledger.documents(&id("T")).count(), 1);
    let history: Vec<_> = w.ledger.document_history(&id("T")).collect();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].height, first);
    assert_eq!(history[0].document.as_ref().unwrap().digest, Hash([1; 32]));
    assert_eq!(history[2].height, replaced);
    assert_eq!(history[3].name.as_str(), "terms");
    assert_eq!(
        (history[3].height, history[3].document.is_none()),
        (removed, true)
    );
    assert_eq!(w.ledger.token(&id("T")).unwrap().document_changes, 4);
}

#[test]
fn conditional_transfers_need_the_agents_approval_used_once() {
    let (mut w, a, b) = issued();
    let mut rules = default_rules();
    rules.transfer_approval = true;
    w.ok(&w.issuer.clone(), set_rules(rules));
    w.rejects(
        &a.key,
        w.transfer("T", &b, 5),
        RejectCode::TransferNotApproved,
    );
    // Only the agent approves.
    w.rejects(
        &w.tsp.clone(),
        approve(&a, &b, 5),
        RejectCode::NotTokenAgent,
    );
    w.rejects(&a.key, approve(&a, &b, 5), RejectCode::NotAdmitted);
    w.rejects(
        &w.issuer.clone(),
        approve(&a, &b, 0),
        RejectCode::ZeroAmount,
    );
    w.ok(&w.issuer.clone(), approve(&a, &b, 5));
    // Another amount, or the other way, is not what was approved.
    w.rejects(
        &a.key,
        w.transfer("T", &b, 6),
        RejectCode::TransferNotApproved,
    );
    w.rejects(
        &b.key,
        w.transfer("T", &a, 5),
        RejectCode::TransferNotApproved,
    );
    let approvals: Vec<_> = w.ledger.transfer_approvals(&id("T")).collect();
    assert_eq!(approvals, vec![(a.wallet(), b.wallet(), Units(5), 1)]);
    w.ok(&a.key, w.transfer("T", &b, 5));
    assert_eq!(w.balance("T", &b.wallet()), 405);
    // Used once.
    w.rejects(
        &a.key,
        w.transfer("T", &b, 5),
        RejectCode::TransferNotApproved,
    );
    assert_eq!(w.ledger.transfer_approvals(&id("T")).count(), 0);
    // Two approvals, two transfers.
    w.ok(&w.issuer.clone(), approve(&a, &b, 5));
    w.ok(&w.issuer.clone(), approve(&a, &b, 5));
    w.ok(&a.key, w.transfer("T", &b, 5));
    w.ok(&a.key, w.transfer("T", &b, 5));
    w.rejects(
        &a.key,
        w.transfer("T", &b, 5),
        RejectCode::TransferNotApproved,
    );
    // The agent's forced transfer is not a holder's transfer: no approval.
    w.ok(
        &w.issuer.clone(),
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T"),
            from: a.wallet(),
            to: b.wallet(),
            amount: Units(1),
            reason: Memo::new("court order 2026-31").unwrap(),
        }),
    );
}

#[test]
fn conditional_transfers_a_settlement_uses_its_approvals_only_when_it_applies() {
    let (mut w, a, b) = issued();
    let mut rules = default_rules();
    rules.transfer_approval = true;
    w.ok(&w.issuer.clone(), set_rules(rules));
    w.ok(&w.issuer.clone(), approve(&a, &b, 5));
    let leg = |from: &Person, to: &Person, amount: u128| Leg {
        token: id("T"),
        from: from.wallet(),
        to: to.wallet(),
        amount: Units(amount),
    };
    // The second leg has no approval: the whole settlement is refused and
    // the first leg's approval stays unused.
    let settle = |legs: Vec<Leg>| {
        Payload::Settle(Settle {
            legs: BoundedVec(legs),
            approvals: BoundedVec::default(),
        })
    };
    w.rejects(
        &a.key,
        settle(vec![leg(&a, &b, 5), leg(&a, &b, 7)]),
        RejectCode::TransferNotApproved,
    );
    assert_eq!(w.ledger.transfer_approvals(&id("T")).count(), 1);
    w.ok(&a.key, settle(vec![leg(&a, &b, 5)]));
    assert_eq!(w.ledger.transfer_approvals(&id("T")).count(), 0);
}

#[test]
fn pre_check_gives_every_reason_the_first_being_executions() {
    let (mut w, a, b) = issued();
    assert!(codes(&w, &a, &b, 5).is_empty());
    // Paused, needing approval, and more than alice holds.
    let mut rules = default_rules();
    rules.transfer_approval = true;
    w.ok(&w.issuer.clone(), set_rules(rules));
    w.ok(
        &w.issuer.clone(),
        Payload::SetPaused(SetPaused {
            token: id("T"),
            paused: true,
        }),
    );
    let all = codes(&w, &a, &b, 601);
    assert_eq!(
        all,
        vec![
            RejectCode::InsufficientBalance,
            RejectCode::TokenPaused,
            RejectCode::TransferNotApproved
        ]
    );
    // A transfer stops at the first.
    w.rejects(&a.key, w.transfer("T", &b, 601), all[0]);
    // To a wallet bound to nobody: the receiver's reason is listed too.
    let dave = Person::new(4);
    let all = codes(&w, &a, &dave, 5);
    assert_eq!(
        all,
        vec![
            RejectCode::TokenPaused,
            RejectCode::TransferNotApproved,
            RejectCode::WalletNotRegistered
        ]
    );
    // An unknown token ends the check at once.
    let none = w
        .ledger
        .transfer_reasons(&w.ctx, &id("NOPE"), &a.wallet(), &b.wallet(), Units(1));
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].code, RejectCode::UnknownToken);
    // The pre-check agrees with what a single-answer check gives.
    let first = w
        .ledger
        .check_transfer(&w.ctx, &id("T"), &a.wallet(), &dave.wallet(), Units(5))
        .unwrap_err();
    assert_eq!(first.code, RejectCode::TokenPaused);
}

fn ballot(
    w: &World,
    id_: &str,
    checkpoint: Option<u64>,
    choices: &[&str],
    days: (u64, u64),
) -> Payload {
    let day = MS_PER_DAY;
    Payload::OpenBallot(OpenBallot {
        ballot: id(id_),
        token: id("T"),
        checkpoint,
        choices: BoundedVec(choices.iter().map(|c| id(c)).collect()),
        opens: w.ctx.time.plus_ms(days.0 * day),
        closes: w.ctx.time.plus_ms(days.1 * day),
    })
}

fn vote(ballot: &str, choice: u8) -> Payload {
    Payload::CastVote(CastVote {
        ballot: id(ballot),
        choice,
    })
}

#[test]
fn ballots_holders_vote_once_inside_the_window_with_their_checkpoint_weight() {
    let (mut w, a, b) = issued();
    let carol = Person::new(3);
    w.onboard(&carol, "KR");
    let agent = w.issuer.clone();
    w.rejects(
        &w.tsp.clone(),
        ballot(&w, "B-1", None, &["sell", "keep"], (0, 7)),
        RejectCode::NotTokenAgent,
    );
    w.rejects(
        &agent,
        ballot(&w, "B-1", None, &["sell"], (0, 7)),
        RejectCode::InvalidField,
    );
    w.rejects(
        &agent,
        ballot(&w, "B-1", None, &["sell", "sell"], (0, 7)),
        RejectCode::InvalidField,
    );
    w.rejects(
        &agent,
        ballot(&w, "B-1", Some(9), &["sell", "keep"], (0, 7)),
        RejectCode::UnknownCheckpoint,
    );
    // The ballot takes its own checkpoint: alice 600, bob 400.
    w.ok(&agent, ballot(&w, "B-1", None, &["sell", "keep"], (0, 7)));
    w.rejects(
        &agent,
        ballot(&w, "B-1", None, &["sell", "keep"], (0, 7)),
        RejectCode::AlreadyExists,
    );
    // What moves after the checkpoint does not change the weights.
    w.ok(&a.key, w.transfer("T", &carol, 100));
    w.ok(&a.key, vote("B-1", 0));
    w.rejects(&a.key, vote("B-1", 1), RejectCode::VoteCast);
    w.rejects(&b.key, vote("B-1", 2), RejectCode::InvalidField);
    w.ok(&b.key, vote("B-1", 1));
    w.rejects(&carol.key, vote("B-1", 0), RejectCode::NoVotingWeight);
    w.rejects(&a.key, vote("B-2", 0), RejectCode::UnknownBallot);
    let t = w.ledger.ballot(&id("B-1")).unwrap();
    assert_eq!(t.tally.0, vec![Units(600), Units(400)]);
    assert_eq!(t.voters, 2);
    let v = w.ledger.ballot_vote(&id("B-1"), &a.wallet()).unwrap();
    assert_eq!((v.choice, v.weight), (0, Units(600)));
    // A second ballot on the same checkpoint, opening tomorrow: carol still
    // has no vote in it, and nobody votes before it opens or after it closes.
    let checkpoint = t.checkpoint;
    w.ok(
        &agent,
        ballot(
            &w,
            "B-2",
            Some(checkpoint),
            &["yes", "no", "abstain"],
            (1, 2),
        ),
    );
    w.rejects(&b.key, vote("B-2", 0), RejectCode::BallotClosed);
    w.advance_days(1);
    w.ok(&b.key, vote("B-2", 2));
    w.advance_days(1);
    w.rejects(&a.key, vote("B-2", 0), RejectCode::BallotClosed);
    let t = w.ledger.ballot(&id("B-2")).unwrap();
    assert_eq!(t.tally.0, vec![Units(0), Units(0), Units(400)]);
    // A ballot closing in the past is refused.
    w.rejects(
        &agent,
        ballot(&w, "B-3", None, &["yes", "no"], (0, 0)),
        RejectCode::InvalidField,
    );
}

pub(crate) fn forced(moves: Vec<(&Person, &Person, u128)>) -> Payload {
    Payload::ForcedMoves(ForcedMoves {
        moves: BoundedVec(
            moves
                .into_iter()
                .map(|(from, to, n)| Leg {
                    token: id("T"),
                    from: from.wallet(),
                    to: to.wallet(),
                    amount: Units(n),
                })
                .collect(),
        ),
        reason: Memo::new("court order 2026-31").unwrap(),
    })
}

#[test]
fn forced_transfer_seizes_and_returns_in_one_step_keeping_the_receivers_compliance() {
    let (mut w, a, b) = issued();
    // The agent's own wallet, bound and KYC'd like anyone's.
    let vault = Person::new(9);
    w.onboard(&vault, "KR");
    let agent = w.issuer.clone();
    w.rejects(
        &w.tsp.clone(),
        forced(vec![(&a, &vault, 100)]),
        RejectCode::NotTokenAgent,
    );
    w.rejects(&agent, forced(vec![]), RejectCode::InvalidField);
    // Seized from alice, 60 returned to her and 40 given to bob, at once.
    w.ok(
        &agent,
        forced(vec![(&a, &vault, 100), (&vault, &a, 60), (&vault, &b, 40)]),
    );
    assert_eq!(
        (
            w.balance("T", &a.wallet()),
            w.balance("T", &b.wallet()),
            w.balance("T", &vault.wallet())
        ),
        (560, 440, 0)
    );
    let forced_records = w
        .events
        .iter()
        .filter(|e| matches!(e, LedgerEvent::Transfer(t) if t.kind == TransferKind::Forced && t.reason.is_some()))
        .count();
    assert_eq!(forced_records, 3);
    // A receiver the rules refuse (no KYC claim) stops every move.
    let dave = Person::new(4);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(dave.binding()));
    w.rejects(
        &agent,
        forced(vec![(&a, &vault, 10), (&vault, &dave, 10)]),
        RejectCode::IdentityNotVerified,
    );
    // Returning more than was seized stops every move too.
    w.rejects(
        &agent,
        forced(vec![(&a, &vault, 10), (&vault, &b, 11)]),
        RejectCode::InsufficientBalance,
    );
}

#[test]
fn forced_transfer_reduces_a_partial_freeze_by_what_it_takes_beyond_the_free_balance() {
    let (mut w, a, b) = issued();
    let agent = w.issuer.clone();
    let freeze = |n: u128| {
        Payload::FreezePartial(FreezePartial {
            token: id("T"),
            wallet: a.wallet(),
            amount: Units(n),
        })
    };
    let frozen = |w: &World| {
        w.ledger
            .state()
            .freezes
            .get(&(id("T"), a.wallet()))
            .map_or(0, |f| f.amount.0)
    };
    // 600 held, 500 frozen: 100 free.
    w.ok(&agent, freeze(500));
    // Taking 80 takes only free units: the freeze stays.
    w.ok(&agent, forced(vec![(&a, &b, 80)]));
    assert_eq!((w.balance("T", &a.wallet()), frozen(&w)), (520, 500));
    // Taking 70 takes the 20 free and 50 frozen: the freeze drops by 50.
    w.ok(&agent, forced(vec![(&a, &b, 70)]));
    assert_eq!((w.balance("T", &a.wallet()), frozen(&w)), (450, 450));
    // A refused set of moves leaves the freeze as it was.
    let dave = Person::new(4);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(dave.binding()));
    w.rejects(
        &agent,
        forced(vec![(&a, &b, 100), (&a, &dave, 1)]),
        RejectCode::IdentityNotVerified,
    );
    assert_eq!(frozen(&w), 450);
    // The single forced transfer follows the same rule.
    w.ok(
        &agent,
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T"),
            from: a.wallet(),
            to: b.wallet(),
            amount: Units(50),
            reason: Memo::new("court order 2026-32").unwrap(),
        }),
    );
    assert_eq!((w.balance("T", &a.wallet()), frozen(&w)), (400, 400));
}
