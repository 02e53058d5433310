//! A small world for ledger tests: founding organisations with keys, people
//! with wallets and DIDs, and helpers to sign and apply transactions.
#![allow(dead_code)]

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
    pub events: Vec<LedgerEvent>,
}

pub fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

/// A person: a key (their wallet) and a DID.
pub struct Person {
    pub key: Keypair,
    pub did: Did,
}

impl Person {
    pub fn new(n: u8) -> Person {
        Person {
            key: key(100 + n),
            did: Did::parse(&format!("did:key:z6MkPerson{n}")).unwrap(),
        }
    }
    pub fn wallet(&self) -> WalletAddress {
        self.key.address()
    }
}

pub fn genesis_orgs() -> Vec<GenesisOrganisation> {
    let org =
        |name: &str, n: u8, roles: Vec<Role>, governor: bool, stake: u128| GenesisOrganisation {
            org: id(name),
            key: key(n).public_key(),
            roles,
            governor,
            stake,
            bond: 0,
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
    ]
}

impl World {
    pub fn new() -> World {
        let ledger = Ledger::genesis(&Genesis {
            epoch_blocks: None,
            committee_max: None,
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
        self.ok(
            &tsp,
            Payload::RegisterWallet(RegisterWallet {
                wallet: p.wallet(),
                did: p.did.clone(),
            }),
        );
        self.claim(&p.did, ClaimTopic::KYC, None);
        self.claim(&p.did, ClaimTopic::JURISDICTION, Some(country));
    }

    pub fn claim(&mut self, did: &Did, topic: ClaimTopic, country: Option<&str>) {
        let claims = key(6);
        self.ok(
            &claims,
            Payload::AddClaim(AddClaim {
                did: did.clone(),
                topic,
                country: country.map(|c| CountryCode::new(c).unwrap()),
                digest: Hash([7; 32]),
                expiry_date: date("2026-12-31"),
            }),
        );
    }

    pub fn register_asset(&mut self, asset: &str, price: Money) {
        let tsp = key(1);
        self.ok(
            &tsp,
            Payload::RegisterAsset(RegisterAsset {
                asset: id(asset),
                owner: Did::parse("did:key:z6MkOwner").unwrap(),
                kind: AssetKind::Tangible,
                description: Hash([1; 32]),
                price,
                tolerance_bps: 500,
            }),
        );
    }

    pub fn appraise(&mut self, asset: &str, value: Money) {
        let appraiser = key(7);
        self.ok(
            &appraiser,
            Payload::RecordAppraisal(RecordAppraisal {
                asset: id(asset),
                value,
            }),
        );
    }

    pub fn request(
        &self,
        request: &str,
        asset: &str,
        token: &str,
        allocations: &[(&Person, u128)],
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
            issuer: id("first-issuer"),
            allocations: BoundedVec(
                allocations
                    .iter()
                    .map(|(p, n)| Allocation {
                        wallet: p.wallet(),
                        amount: Units(*n),
                    })
                    .collect(),
            ),
            rules: default_rules(),
        }
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
        self.ok(
            &issuer,
            Payload::ExecuteIssuance(ExecuteIssuance {
                request: r.request,
                amount: r.amount,
                allocations: r.allocations,
            }),
        );
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

pub fn default_rules() -> TokenRules {
    TokenRules {
        required_topics: BoundedVec(vec![ClaimTopic::KYC]),
        allowed_countries: BoundedVec::default(),
        denied_countries: BoundedVec::default(),
        max_holders: 0,
        max_balance_per_identity: Units(0),
        lockup_until: None,
    }
}
