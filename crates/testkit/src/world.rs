//! A small world for ledger tests and benchmarks: founding organisations
//! with keys, people with wallets and DIDs of their own, and helpers that
//! sign, apply and check transactions (a refusal must change nothing but
//! the signer's nonce).

use crate::key;
use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::*;
use tranche_types::*;

pub const CHAIN: &str = "tranche-test";
/// 2026-01-01T00:00:00Z.
pub const START_MS: u64 = 1_767_225_600_000;

pub fn usd(minor: u128) -> Money {
    Money::new(minor, Currency::known("USD").unwrap())
}

pub fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

pub fn date(s: &str) -> Date {
    s.parse().unwrap()
}

#[derive(Debug)]
pub struct World {
    pub ledger: Ledger,
    pub ctx: BlockContext,
    pub tsp: Keypair,
    pub issuer: Keypair,
    pub exchange: Keypair,
    pub regulator: Keypair,
    pub custodian: Keypair,
    pub claims: Keypair,
    pub appraiser: Keypair,
    pub bank: Keypair,
    pub validator: Keypair,
    pub registry: Keypair,
    pub events: Vec<LedgerEvent>,
}

/// The file the reject codes this process reaches go to, when the
/// reachability test runs the others (see `every_reject_code_is_reached`).
pub const REACHED_CODES_ENV: &str = "TRANCHE_REACHED_CODES";

/// Notes that a test drove the ledger to `code`.
pub fn reached(code: RejectCode) {
    if let Some(path) = std::env::var_os(REACHED_CODES_ENV) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        // One write per line: tests run on several threads, and a line
        // written in pieces could be split by another's.
        f.write_all(format!("{}\n", code.name()).as_bytes())
            .unwrap();
    }
}

/// Asserts that `outcome` is a rejection with `code`, and notes it.
#[track_caller]
pub fn refused(outcome: Outcome, code: RejectCode) {
    match outcome {
        Outcome::Rejected(r) => assert_eq!(r.code, code, "expected {code:?}, got: {r}"),
        Outcome::Applied => panic!("expected {code:?}, but it was applied"),
    }
    reached(code);
}

/// Asserts that `result` is a rejection with `code`, and notes it.
#[track_caller]
pub fn refused_with<T: std::fmt::Debug>(result: Result<T, Rejection>, code: RejectCode) {
    match result {
        Err(r) => assert_eq!(r.code, code, "expected {code:?}, got: {r}"),
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
    reached(code);
}

/// A person: a key (their wallet) and a DID, a did:key of a key of its own.
#[derive(Clone, Debug)]
pub struct Person {
    pub key: Keypair,
    pub id_key: Keypair,
    pub did: Did,
}

/// The key behind person `n`'s DID.
pub fn id_key(n: u8) -> Keypair {
    let mut seed = [0xD1; 32];
    seed[0] = n;
    Keypair::from_seed(&seed)
}

/// The did:key of `key`.
pub fn did_of(key: &Keypair) -> Did {
    Ledger::did_of_key(&key.public_key())
}

/// An asset owner's DID.
pub fn owner_did() -> Did {
    did_of(&key(250))
}

impl Person {
    pub fn new(n: u8) -> Person {
        let id_key = id_key(n);
        Person {
            key: key(100 + n),
            did: did_of(&id_key),
            id_key,
        }
    }

    /// Person `n` of many (benchmarks and load tests need more than 256),
    /// with keys of their own, apart from every [`Person::new`].
    pub fn numbered(n: u64) -> Person {
        let id_key = crate::numbered_key(0xD2, n);
        Person {
            key: crate::numbered_key(0xB0, n),
            did: did_of(&id_key),
            id_key,
        }
    }

    /// Another wallet, with the key seeded `n`, of the same person.
    pub fn other_wallet(&self, n: u8) -> Person {
        Person {
            key: key(n),
            ..self.clone()
        }
    }

    pub fn wallet(&self) -> WalletAddress {
        self.key.address()
    }

    /// The person's consent to binding their wallet to their DID, signed
    /// by the wallet key and by the DID's key.
    pub fn binding(&self) -> RegisterWallet {
        Ledger::sign_binding(&id(CHAIN), &self.key, &self.id_key)
    }

    /// The person's consent to `custodian` keeping a wallet for them.
    pub fn custody(&self, custodian: &str) -> OpenCustodialWallet {
        Ledger::sign_custody_consent(&id(CHAIN), &id(custodian), &self.id_key)
    }
}

pub fn genesis_orgs() -> Vec<GenesisOrganisation> {
    let org =
        |name: &str, n: u8, roles: Vec<Role>, governor: bool, stake: u128| GenesisOrganisation {
            org: id(name),
            key: key(n).public_key(),
            roles,
            governor,
            stake: Stake(stake),
            bond: Stake::ZERO,
        };
    vec![
        org("acme-tsp", 1, vec![Role::Tsp, Role::Validator], true, 1_000),
        org(
            "first-issuer",
            2,
            vec![Role::Issuer, Role::Validator],
            true,
            1_000,
        ),
        org(
            "big-exchange",
            3,
            vec![Role::Exchange, Role::Validator],
            true,
            1_000,
        ),
        org(
            "aml-regulator",
            4,
            vec![Role::Regulator, Role::Validator],
            true,
            1_000,
        ),
        org("safe-custody", 5, vec![Role::Custodian], false, 0),
        org("kyc-co", 6, vec![Role::ClaimIssuer], false, 0),
        org("appraise-co", 7, vec![Role::Appraiser], false, 0),
        org("central-bank", 8, vec![Role::CentralBank], false, 0),
        org("node-runner", 9, vec![Role::Validator], false, 500),
        org("asset-registry", 10, vec![Role::AssetRegistry], false, 0),
    ]
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// The founding organisations' chain at height 1, 2026-01-01.
    pub fn new() -> World {
        let ledger = Ledger::genesis(&Genesis {
            epoch_blocks: None,
            committee_max: None,
            appraisal_tolerance_bps: None,
            chain_id: id(CHAIN),
            organisations: genesis_orgs(),
        })
        .unwrap();
        World {
            ledger,
            ctx: BlockContext {
                height: 1,
                time: Timestamp(START_MS),
            },
            tsp: key(1),
            issuer: key(2),
            exchange: key(3),
            regulator: key(4),
            custodian: key(5),
            claims: key(6),
            appraiser: key(7),
            bank: key(8),
            validator: key(9),
            registry: key(10),
            events: Vec::new(),
        }
    }

    /// Builds and signs a transaction from `signer` with its next nonce.
    pub fn tx(&self, signer: &Keypair, payload: Payload) -> SignedTransaction {
        let tx = Transaction {
            chain_id: id(CHAIN),
            signer: signer.public_key(),
            nonce: self.ledger.next_nonce(&signer.public_key()),
            valid_until: Timestamp(u64::MAX),
            payload,
        };
        sign_transaction(signer, tx).unwrap()
    }

    pub fn send(&mut self, signer: &Keypair, payload: Payload) -> Outcome {
        let stx = self.tx(signer, payload);
        let applied = self.ledger.apply(&self.ctx, &stx);
        self.ctx.height += 1;
        self.events = applied.events;
        applied.outcome
    }

    #[track_caller]
    pub fn ok(&mut self, signer: &Keypair, payload: Payload) {
        let outcome = self.send(signer, payload);
        assert_eq!(outcome, Outcome::Applied);
    }

    /// Asserts a refusal with `code`, and that nothing but the nonce changed.
    #[track_caller]
    pub fn rejects(&mut self, signer: &Keypair, payload: Payload, code: RejectCode) -> Rejection {
        let before = self.ledger.state().clone();
        let stx = self.tx(signer, payload);
        let dry = self.ledger.dry_run(&self.ctx, &stx);
        let outcome = self.send(signer, stx.tx.payload.clone());
        match outcome {
            Outcome::Rejected(r) => {
                assert_eq!(r.code, code, "expected {code:?}, got: {r}");
                reached(code);
                assert_eq!(
                    dry,
                    Outcome::Rejected(r.clone()),
                    "the dry run gives the same answer"
                );
                let mut after = self.ledger.state().clone();
                after.nonces = before.nonces.clone();
                assert_eq!(
                    after, before,
                    "a refused transaction changes nothing but the nonce"
                );
                assert!(self.events.is_empty());
                r
            }
            Outcome::Applied => panic!("expected {code:?}, but it was applied"),
        }
    }

    pub fn advance_days(&mut self, days: u64) {
        self.ctx.time = self.ctx.time.plus_ms(days * MS_PER_DAY);
    }

    /// Binds the person's wallet to their DID and gives them KYC and a
    /// jurisdiction claim valid for a year.
    pub fn onboard(&mut self, p: &Person, country: &str) {
        let tsp = key(1);
        self.ok(&tsp, Payload::RegisterWallet(p.binding()));
        self.claim(&p.did, ClaimTopic::KYC, None);
        self.claim(&p.did, ClaimTopic::JURISDICTION, Some(country));
    }

    pub fn claim(&mut self, did: &Did, topic: ClaimTopic, country: Option<&str>) {
        self.ok(&key(6), claim(did, topic, country));
    }

    pub fn register_asset(&mut self, asset: &str, price: Money) {
        self.attest(asset, &owner_did());
        self.ok(&key(1), register_asset(asset, owner_did(), price));
    }

    /// The asset registry attests `owner` as the owner of `asset` (ST-6).
    pub fn attest(&mut self, asset: &str, owner: &Did) {
        self.ok(&key(10), record_ownership(asset, owner.clone()));
    }

    pub fn appraise(&mut self, asset: &str, value: Money) {
        self.ok(&key(7), appraisal(asset, value));
    }

    pub fn request(
        &self,
        request: &str,
        asset: &str,
        token: &str,
        allocations: &[(&Person, u128)],
        amount: u128,
    ) -> RequestIssuance {
        let allocations: Vec<(WalletAddress, u128)> =
            allocations.iter().map(|(p, n)| (p.wallet(), *n)).collect();
        issuance_request(request, asset, token, "first-issuer", &allocations, amount)
    }

    /// The paper's numbers: AP 100,000 USD, SP 100 USD, 1,000 tokens, issued
    /// to the given investors, who are onboarded first.
    pub fn tokenize(&mut self, token: &str, investors: &[(&Person, u128)]) {
        let asset = format!("A-{token}");
        self.register_asset(&asset, usd(10_000_000));
        self.appraise(&asset, usd(10_000_000));
        let total: u128 = investors.iter().map(|(_, n)| n).sum();
        let r = self.request(&format!("R-{token}"), &asset, token, investors, total);
        let tsp = key(1);
        self.ok(&tsp, Payload::RequestIssuance(r.clone()));
        let issuer = key(2);
        self.ok(&issuer, execution(&r));
    }

    /// Issues token `T` (1,000 units of asset `A-T`) to `investors` under `rules`.
    pub fn issue_with_rules(&mut self, investors: &[(&Person, u128)], rules: TokenRules) {
        self.register_asset("A-T", usd(10_000_000));
        self.appraise("A-T", usd(10_000_000));
        let mut r = self.request("R-T", "A-T", "T", investors, 1_000);
        r.rules = rules;
        self.ok(&key(1), Payload::RequestIssuance(r.clone()));
        self.ok(&key(2), execution(&r));
    }

    /// Issues `token` (asset `A-<token>`, appraised at its price: 100 USD a
    /// unit) to `investors` under `rules`, all of it allocated.
    pub fn issue(&mut self, token: &str, investors: &[(&Person, u128)], rules: TokenRules) {
        let asset = format!("A-{token}");
        let total: u128 = investors.iter().map(|(_, n)| n).sum();
        self.register_asset(&asset, usd(total * 10_000));
        self.appraise(&asset, usd(total * 10_000));
        let mut r = self.request(&format!("R-{token}"), &asset, token, investors, total);
        r.rules = rules;
        self.ok(&key(1), Payload::RequestIssuance(r.clone()));
        self.ok(&key(2), execution(&r));
    }

    /// Opens `p`'s custodial wallet at safe-custody, with their consent, and
    /// moves `amount` of `T` into it; returns the wallet.
    pub fn entrust(&mut self, p: &Person, amount: u128) -> WalletAddress {
        self.ok(
            &key(5),
            Payload::OpenCustodialWallet(p.custody("safe-custody")),
        );
        let vault = Ledger::custodial_wallet(&id("safe-custody"), &p.did);
        self.ok(
            &p.key,
            Payload::Transfer(Transfer {
                token: id("T"),
                to: vault,
                amount: Units(amount),
                reference: None,
            }),
        );
        vault
    }

    pub fn transfer(&self, token: &str, to: &Person, amount: u128) -> Payload {
        Payload::Transfer(Transfer {
            token: id(token),
            to: to.wallet(),
            amount: Units(amount),
            reference: None,
        })
    }

    pub fn balance(&self, token: &str, wallet: &WalletAddress) -> u128 {
        self.ledger.balance(&id(token), wallet).0
    }
}

/// Admits `org` with `key` and optionally grants it `role`, by quorum.
pub fn admit(w: &mut World, org: &str, k: &Keypair, role: Option<Role>) {
    let governors = [w.tsp.clone(), w.issuer.clone(), w.exchange.clone()];
    let admit = GovernanceAction::Admit(AdmitOrganisation {
        org: id(org),
        key: k.public_key(),
        governor: false,
    });
    for g in &governors {
        w.ok(
            g,
            Payload::Govern(Govern {
                action: admit.clone(),
            }),
        );
    }
    if let Some(role) = role {
        let grant = GovernanceAction::Grant(RoleChange { org: id(org), role });
        for g in &governors {
            w.ok(
                g,
                Payload::Govern(Govern {
                    action: grant.clone(),
                }),
            );
        }
    }
}

/// A custodial transfer of `amount` of `T` to `to`, which `holder_key`
/// authorizes `safe-custody` to make as its wallet's next authorization,
/// valid for a day of the world's time.
pub fn custodial_transfer(w: &World, holder_key: &Keypair, to: &Person, amount: u128) -> Payload {
    let custodian: OrgId = id("safe-custody");
    let key = holder_key.public_key();
    let holder = w
        .ledger
        .identity(&key.address())
        .cloned()
        .unwrap_or_else(|| Ledger::did_of_key(&key));
    let number = w
        .ledger
        .custody(&Ledger::custodial_wallet(&custodian, &holder))
        .map_or(0, |c| c.next_authorization);
    let valid_until = w.ctx.time.plus_ms(MS_PER_DAY);
    Payload::CustodialTransfer(authorize(
        &custodian,
        holder_key,
        (id("T"), to.wallet(), Units(amount)),
        number,
        valid_until,
    ))
}

/// `key`'s authorization for `custodian` to move `(token, to, amount)` out
/// of the custodial wallet it keeps for the key's holder, as number
/// `number`, until `valid_until`.
pub fn authorize(
    custodian: &OrgId,
    key: &Keypair,
    (token, to, amount): (TokenId, WalletAddress, Units),
    number: u64,
    valid_until: Timestamp,
) -> CustodialTransfer {
    Ledger::sign_authorization(
        &id(CHAIN),
        custodian,
        key,
        (token, to, amount),
        None,
        number,
        valid_until,
    )
}

/// `did`'s claim of `topic` (with `country` for a jurisdiction), valid
/// through 2026 (the world's clock starts on 2026-01-01).
pub fn claim(did: &Did, topic: ClaimTopic, country: Option<&str>) -> Payload {
    claim_until(did, topic, country, date("2026-12-31"))
}

/// `did`'s claim of `topic`, valid through `expiry` (a chain on the wall
/// clock needs one that outlives the run).
pub fn claim_until(did: &Did, topic: ClaimTopic, country: Option<&str>, expiry: Date) -> Payload {
    Payload::AddClaim(AddClaim {
        did: did.clone(),
        topic,
        country: country.map(|c| CountryCode::new(c).unwrap()),
        digest: Hash([7; 32]),
        expiry_date: expiry,
    })
}

/// A tangible asset `asset` of `owner`, priced at `price`.
/// An asset registry's attestation that `owner` owns `asset` (ST-6), with
/// a credential digest made from the asset's id.
pub fn record_ownership(asset: &str, owner: Did) -> Payload {
    let mut digest = [0u8; 32];
    for (d, b) in digest.iter_mut().zip(asset.bytes().cycle()) {
        *d = b;
    }
    Payload::RecordOwnership(RecordOwnership {
        asset: id(asset),
        owner,
        credential: Hash(digest),
    })
}

pub fn register_asset(asset: &str, owner: Did, price: Money) -> Payload {
    Payload::RegisterAsset(RegisterAsset {
        asset: id(asset),
        owner,
        kind: AssetKind::Tangible,
        description: Hash([1; 32]),
        price,
    })
}

/// An appraisal of `asset` at `value`.
pub fn appraisal(asset: &str, value: Money) -> Payload {
    Payload::RecordAppraisal(RecordAppraisal {
        asset: id(asset),
        value,
    })
}

/// A request for `issuer` to issue `amount` of `token` at 100 USD a unit,
/// from 2026 to 2030, allocated to wallets, under [`default_rules`].
pub fn issuance_request(
    request: &str,
    asset: &str,
    token: &str,
    issuer: &str,
    allocations: &[(WalletAddress, u128)],
    amount: u128,
) -> RequestIssuance {
    RequestIssuance {
        request: id(request),
        asset: id(asset),
        token: id(token),
        unit_price: usd(10_000),
        issue_date: date("2026-01-01"),
        expiry_date: date("2030-12-31"),
        amount: Units(amount),
        issuer: id(issuer),
        allocations: BoundedVec(
            allocations
                .iter()
                .map(|(wallet, n)| Allocation {
                    wallet: *wallet,
                    amount: Units(*n),
                    lockup_until: None,
                })
                .collect(),
        ),
        rules: default_rules(),
    }
}

/// The issuer's execution of `request` as requested.
pub fn execution(request: &RequestIssuance) -> Payload {
    Payload::ExecuteIssuance(ExecuteIssuance {
        request: request.request.clone(),
        amount: request.amount,
        allocations: request.allocations.clone(),
    })
}

pub fn default_rules() -> TokenRules {
    TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec::default(),
        denied_countries: BoundedVec::default(),
        max_holders: 0,
        max_balance_per_identity: Units(0),
        lockup_until: None,
        transfer_approval: false,
        category_limits: BoundedVec::default(),
        transfer_limit: None,
        max_ownership_bps: 0,
    }
}

/// Revokes `org`'s `role`, by quorum.
pub fn revoke_role(w: &mut World, org: &str, role: Role) {
    let governors = [w.tsp.clone(), w.issuer.clone(), w.exchange.clone()];
    let revoke = GovernanceAction::Revoke(RoleChange { org: id(org), role });
    for g in &governors {
        w.ok(
            g,
            Payload::Govern(Govern {
                action: revoke.clone(),
            }),
        );
    }
}
