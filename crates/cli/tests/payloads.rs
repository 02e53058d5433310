//! Every kind of ledger transaction builds from its JSON payload through
//! `tranche tx build payload`, and comes out as it went in.

mod support;

use support::Env;
use tranche_types::*;

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn usd(minor: u128) -> Money {
    Money::new(minor, Currency::known("USD").unwrap())
}

/// One payload of every kind.
fn every_kind() -> Vec<Payload> {
    let wallet = PublicKey([7; 32]).address();
    let did = Did::parse("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK").unwrap();
    let rules = TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec(vec![CountryCode::new("KR").unwrap()]),
        denied_countries: BoundedVec::default(),
        max_holders: 10,
        max_balance_per_identity: Units(500),
        lockup_until: Some(id("2026-06-30")),
        transfer_approval: false,
        category_limits: BoundedVec(vec![CategoryLimit {
            topic: ClaimTopic(1_001),
            max_per_identity: Units(100),
        }]),
        transfer_limit: Some(TransferLimit {
            max: Units(50),
            period: LimitPeriod::Rolling,
            days: 30,
        }),
        max_ownership_bps: 2_500,
    };
    let allocations = AllocationsList::new(vec![Allocation {
        wallet,
        amount: Units(1_000),
        lockup_until: Some(id("2027-01-31")),
    }])
    .unwrap();
    let leg = Leg {
        token: id("T-1"),
        from: wallet,
        to: PublicKey([8; 32]).address(),
        amount: Units(3),
    };
    let delegate = Delegate {
        validator: id("node-runner"),
        amount: Stake(50),
    };
    vec![
        Payload::Transfer(Transfer {
            token: id("T-1"),
            to: wallet,
            amount: Units(10),
            reference: Some(id("TRADE-1")),
        }),
        Payload::Govern(Govern {
            action: GovernanceAction::Admit(AdmitOrganisation {
                org: id("new-tsp"),
                key: PublicKey([9; 32]),
                governor: false,
            }),
        }),
        Payload::RegisterWallet(RegisterWallet {
            wallet,
            did: did.clone(),
            wallet_key: PublicKey([7; 32]),
            wallet_signature: Signature([1; 64]),
            did_signature: Signature([2; 64]),
        }),
        Payload::AddClaim(AddClaim {
            did: did.clone(),
            topic: ClaimTopic::JURISDICTION,
            country: Some(CountryCode::new("KR").unwrap()),
            digest: Hash([3; 32]),
            expiry_date: id("2027-12-31"),
        }),
        Payload::RevokeClaim(RevokeClaim {
            did: did.clone(),
            topic: ClaimTopic::KYC,
        }),
        Payload::RegisterAsset(RegisterAsset {
            asset: id("A-17"),
            owner: did.clone(),
            kind: AssetKind::ToBeCreated,
            description: Hash([1; 32]),
            price: usd(10_000_000),
        }),
        Payload::RecordAppraisal(RecordAppraisal {
            asset: id("A-17"),
            value: usd(9_900_000),
        }),
        Payload::RequestIssuance(RequestIssuance {
            request: id("R-1"),
            asset: id("A-17"),
            token: id("T-1"),
            unit_price: usd(10_000),
            issue_date: id("2026-01-01"),
            expiry_date: id("2030-12-31"),
            amount: Units(1_000),
            issuer: id("first-issuer"),
            allocations: allocations.clone(),
            rules: rules.clone(),
        }),
        Payload::ExecuteIssuance(ExecuteIssuance {
            request: id("R-1"),
            amount: Units(1_000),
            allocations: allocations.clone(),
        }),
        Payload::WithdrawIssuance(WithdrawIssuance { request: id("R-1") }),
        Payload::OpenCustodialWallet(OpenCustodialWallet {
            holder: did.clone(),
            consent: Signature([4; 64]),
        }),
        Payload::CustodialTransfer(CustodialTransfer {
            token: id("T-1"),
            to: wallet,
            amount: Units(5),
            reference: None,
            authorization: HolderAuthorization {
                key: PublicKey([6; 32]),
                number: 2,
                valid_until: Timestamp(1_700_000_000_000),
                signature: Signature([5; 64]),
            },
        }),
        Payload::SetFrozen(SetFrozen {
            token: id("T-1"),
            wallet,
            frozen: true,
        }),
        Payload::FreezePartial(FreezePartial {
            token: id("T-1"),
            wallet,
            amount: Units(100),
        }),
        Payload::SetPaused(SetPaused {
            token: id("T-1"),
            paused: true,
        }),
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T-1"),
            from: wallet,
            to: leg.to,
            amount: Units(1),
            reason: Memo::new("court order 2026-17").unwrap(),
        }),
        Payload::RecoverWallet(RecoverWallet {
            token: id("T-1"),
            lost: wallet,
            new: leg.to,
        }),
        Payload::CreateCheckpoint(CreateCheckpoint { token: id("T-1") }),
        Payload::DeclareDistribution(DeclareDistribution {
            distribution: id("D-1"),
            token: id("T-1"),
            checkpoint: 1,
            total: usd(500_000),
        }),
        Payload::RecordPayment(RecordPayment {
            distribution: id("D-1"),
            wallet,
        }),
        Payload::RequestRevocation(RequestRevocation {
            request: id("V-1"),
            token: id("T-1"),
            amount: Units(200),
            redemption: None,
        }),
        Payload::ExecuteRevocation(ExecuteRevocation {
            request: id("V-1"),
            moves: BoundedVec(allocations.0.clone()),
        }),
        Payload::IssueCashToken(IssueCashToken {
            token: id("DKRW"),
            currency: Currency::new("DKRW", CurrencyKind::Cbdc, 0).unwrap(),
        }),
        Payload::MintCash(MintCash {
            token: id("DKRW"),
            to: wallet,
            amount: Units(1_000_000),
        }),
        Payload::Settle(Settle {
            legs: BoundedVec(vec![leg.clone()]),
            approvals: BoundedVec(vec![Approval {
                key: PublicKey([8; 32]),
                signature: Signature([6; 64]),
            }]),
        }),
        Payload::BondValidator(BondValidator {
            consensus_key: PublicKey([9; 32]),
            amount: Stake(100),
        }),
        Payload::Delegate(delegate.clone()),
        Payload::Undelegate(delegate),
        Payload::AnchorAudit(AnchorAudit {
            entries: 12,
            head: Hash([7; 32]),
        }),
        Payload::OpenOffering(OpenOffering {
            offering: "O-1".parse().unwrap(),
            asset: "A-1".parse().unwrap(),
            token: "T-1".parse().unwrap(),
            unit_price: usd(10_000),
            amount: Units(1_000),
            min_units: Units(1),
            max_units: Units(0),
            soft_cap: Units(500),
            opens: Timestamp(1_800_000_000_000),
            closes: Timestamp(1_800_086_400_000),
            issuer: "first-issuer".parse().unwrap(),
            bank: "escrow-bank".parse().unwrap(),
            cash_token: "USD-DEP".parse().unwrap(),
            issue_date: "2026-01-01".parse().unwrap(),
            expiry_date: "2030-12-31".parse().unwrap(),
            rules: rules.clone(),
            lockup_until: Some("2027-06-30".parse().unwrap()),
        }),
        Payload::Subscribe(Subscribe {
            offering: "O-1".parse().unwrap(),
            units: Units(600),
        }),
        Payload::CloseOffering(CloseOffering {
            offering: "O-1".parse().unwrap(),
            max: 1_000,
        }),
        Payload::IssueOffering(IssueOffering {
            offering: "O-1".parse().unwrap(),
            max: 1_000,
        }),
        Payload::ReleaseProceeds(ReleaseProceeds {
            offering: "O-1".parse().unwrap(),
            to: WalletAddress([3; 20]),
        }),
        Payload::FundDistribution(FundDistribution {
            distribution: "D-1".parse().unwrap(),
            cash_token: "USD-DEP".parse().unwrap(),
            deadline: Timestamp(1_800_000_000_000),
        }),
        Payload::ClaimDistribution(ClaimDistribution {
            distribution: "D-1".parse().unwrap(),
            custodial_wallet: Some(wallet),
        }),
        Payload::ReclaimDistribution(ReclaimDistribution {
            distribution: "D-1".parse().unwrap(),
        }),
        Payload::RecordOwnership(RecordOwnership {
            asset: "A-1".parse().unwrap(),
            owner: did.clone(),
            credential: Hash([4; 32]),
        }),
        Payload::RedeemCash(RedeemCash {
            token: "USD-DEP".parse().unwrap(),
            amount: Units(1_000_000),
        }),
        Payload::PublishAmlPolicy(PublishAmlPolicy {
            version: 1,
            effective_height: 10,
            policy: AmlPolicy {
                report_period_secs: 3_600,
                limits: BoundedVec(vec![AmlLimit {
                    asset: "USD".parse().unwrap(),
                    large_value: Units(1_000_000),
                    daily_value_max: Units(5_000_000),
                    travel_rule_value: Units(100_000),
                }]),
                blocked_countries: BoundedVec(vec![CountryCode::new("KP").unwrap()]),
                sanctioned: BoundedVec(vec![did.clone()]),
            },
        }),
        Payload::SetTokenRules(SetTokenRules {
            token: id("T-1"),
            rules: TokenRules {
                transfer_approval: true,
                ..rules.clone()
            },
        }),
        Payload::SetRuleChecks(SetRuleChecks {
            token: id("T-1"),
            suspended: true,
        }),
        Payload::SetTrustedIssuers(SetTrustedIssuers {
            token: id("T-1"),
            topic: ClaimTopic::KYC,
            issuers: BoundedVec(vec![id("kyc-co")]),
        }),
        Payload::SetDocument(SetDocument {
            token: id("T-1"),
            name: id("prospectus"),
            uri: id("https://acme.example/prospectus.pdf"),
            digest: Hash([5; 32]),
        }),
        Payload::RemoveDocument(RemoveDocument {
            token: id("T-1"),
            name: id("prospectus"),
        }),
        Payload::ApproveTransfer(ApproveTransfer {
            token: id("T-1"),
            from: wallet,
            to: PublicKey([8; 32]).address(),
            amount: Units(5),
        }),
        Payload::OpenBallot(OpenBallot {
            ballot: id("B-1"),
            token: id("T-1"),
            checkpoint: None,
            choices: BoundedVec(vec![id("approve-sale"), id("reject-sale")]),
            opens: Timestamp(1_800_000_000_000),
            closes: Timestamp(1_800_086_400_000),
        }),
        Payload::CastVote(CastVote {
            ballot: id("B-1"),
            choice: 1,
        }),
        Payload::ForcedMoves(ForcedMoves {
            moves: BoundedVec(vec![leg.clone(), leg.clone()]),
            reason: Memo::new("court order 2026-31").unwrap(),
        }),
        Payload::CreateHold(CreateHold {
            hold: id("H-1"),
            token: id("T-1"),
            amount: Units(5),
            notary: PublicKey([8; 32]).address(),
            receiver: Some(wallet),
            expiry: Timestamp(1_800_000_000_000),
        }),
        Payload::ExecuteHold(ExecuteHold {
            hold: id("H-1"),
            to: None,
        }),
        Payload::ReleaseHold(ReleaseHold { hold: id("H-1") }),
        Payload::CreateInstruction(CreateInstruction {
            instruction: id("I-1"),
            legs: BoundedVec(vec![leg.clone()]),
            ordered: true,
            deadline: Timestamp(1_800_000_000_000),
        }),
        Payload::AffirmInstruction(AffirmInstruction {
            instruction: id("I-1"),
        }),
        Payload::CancelInstruction(CancelInstruction {
            instruction: id("I-1"),
        }),
        Payload::SetLimitExemption(SetLimitExemption {
            token: id("T-1"),
            did: did.clone(),
            exempt: true,
        }),
    ]
}

/// The kind's name; naming every variant here makes a new kind fail to
/// compile until it has a sample above.
fn kind(p: &Payload) -> &'static str {
    match p {
        Payload::Transfer(_) => "transfer",
        Payload::Govern(_) => "govern",
        Payload::RegisterWallet(_) => "register_wallet",
        Payload::AddClaim(_) => "add_claim",
        Payload::RevokeClaim(_) => "revoke_claim",
        Payload::RegisterAsset(_) => "register_asset",
        Payload::RecordAppraisal(_) => "record_appraisal",
        Payload::RequestIssuance(_) => "request_issuance",
        Payload::ExecuteIssuance(_) => "execute_issuance",
        Payload::WithdrawIssuance(_) => "withdraw_issuance",
        Payload::OpenCustodialWallet(_) => "open_custodial_wallet",
        Payload::CustodialTransfer(_) => "custodial_transfer",
        Payload::SetFrozen(_) => "set_frozen",
        Payload::FreezePartial(_) => "freeze_partial",
        Payload::SetPaused(_) => "set_paused",
        Payload::ForcedTransfer(_) => "forced_transfer",
        Payload::RecoverWallet(_) => "recover_wallet",
        Payload::CreateCheckpoint(_) => "create_checkpoint",
        Payload::DeclareDistribution(_) => "declare_distribution",
        Payload::RecordPayment(_) => "record_payment",
        Payload::RequestRevocation(_) => "request_revocation",
        Payload::ExecuteRevocation(_) => "execute_revocation",
        Payload::IssueCashToken(_) => "issue_cash_token",
        Payload::MintCash(_) => "mint_cash",
        Payload::Settle(_) => "settle",
        Payload::BondValidator(_) => "bond_validator",
        Payload::Delegate(_) => "delegate",
        Payload::Undelegate(_) => "undelegate",
        Payload::AnchorAudit(_) => "anchor_audit",
        Payload::OpenOffering(_) => "open_offering",
        Payload::Subscribe(_) => "subscribe",
        Payload::CloseOffering(_) => "close_offering",
        Payload::IssueOffering(_) => "issue_offering",
        Payload::ReleaseProceeds(_) => "release_proceeds",
        Payload::FundDistribution(_) => "fund_distribution",
        Payload::ClaimDistribution(_) => "claim_distribution",
        Payload::ReclaimDistribution(_) => "reclaim_distribution",
        Payload::RecordOwnership(_) => "record_ownership",
        Payload::RedeemCash(_) => "redeem_cash",
        Payload::PublishAmlPolicy(_) => "publish_aml_policy",
        Payload::SetTokenRules(_) => "set_token_rules",
        Payload::SetRuleChecks(_) => "set_rule_checks",
        Payload::SetTrustedIssuers(_) => "set_trusted_issuers",
        Payload::SetDocument(_) => "set_document",
        Payload::RemoveDocument(_) => "remove_document",
        Payload::ApproveTransfer(_) => "approve_transfer",
        Payload::OpenBallot(_) => "open_ballot",
        Payload::CastVote(_) => "cast_vote",
        Payload::ForcedMoves(_) => "forced_moves",
        Payload::CreateHold(_) => "create_hold",
        Payload::ExecuteHold(_) => "execute_hold",
        Payload::ReleaseHold(_) => "release_hold",
        Payload::CreateInstruction(_) => "create_instruction",
        Payload::AffirmInstruction(_) => "affirm_instruction",
        Payload::CancelInstruction(_) => "cancel_instruction",
        Payload::SetLimitExemption(_) => "set_limit_exemption",
    }
}

#[test]
fn every_ledger_transaction_kind_builds_from_its_json_payload() {
    let env = Env::new();
    env.ok(&["key", "new", "alice", "--password-file", "pw"]);
    let payloads = every_kind();
    let kinds: std::collections::BTreeSet<&str> = payloads.iter().map(kind).collect();
    assert_eq!(kinds.len(), payloads.len(), "one sample of each kind");
    let help = env.ok(&["tx", "build", "payload", "--help"]);
    for p in &payloads {
        assert!(help.contains(kind(p)), "--help names {}", kind(p));
        let json = serde_json::to_string_pretty(p).unwrap();
        env.build_payload(&json, "alice", "1", "t.json");
        let tx: Transaction =
            serde_json::from_str(&std::fs::read_to_string(env.path("t.json")).unwrap()).unwrap();
        assert_eq!(&tx.payload, p, "{} comes out as it went in", kind(p));
    }
}
