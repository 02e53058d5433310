//! Every signature a transaction carries, made with the `tranche` command
//! offline (REC-5): a person's consent to a binding and to custody (SR-5,
//! SR-3), a holder's authorization of a custodial transfer (SR-3) and a
//! settlement approval; and the exit codes that tell usage errors apart
//! from the rest.

use tranche_crypto::{verify, Domain};
use tranche_ledger::Ledger;
use tranche_types::{ChainId, Did, Payload, PublicKey, Transaction, WalletAddress};

mod support;

use support::Env;

/// An environment whose commands find the password in TRANCHE_PASSWORD.
fn env() -> Env {
    Env {
        password_env: true,
        ..Env::new()
    }
}

fn key(env: &Env, name: &str) -> (PublicKey, WalletAddress) {
    let info = env.json(&["key", "show", name]);
    (
        info["public_key"].as_str().unwrap().parse().unwrap(),
        info["address"].as_str().unwrap().parse().unwrap(),
    )
}

fn read<T: serde::de::DeserializeOwned>(env: &Env, file: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(env.path(file)).unwrap()).unwrap()
}

fn chain() -> ChainId {
    "alpha".parse().unwrap()
}

#[test]
fn sr5_bind_wallet_signs_the_wallets_consent_and_the_dids_proof_of_control() {
    let env = env();
    env.ok(&["key", "new", "alice"]);
    let did = env.json(&["did", "new", "alice-id"])["did"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&[
        "did",
        "bind-wallet",
        "--chain-id",
        "alpha",
        "--key",
        "alice",
        "--did-key",
        "alice-id",
        "--out",
        "bind.json",
    ]);
    let Payload::RegisterWallet(p) = read(&env, "bind.json") else {
        panic!("a register_wallet payload")
    };
    let (wallet_key, wallet) = key(&env, "alice");
    let (did_key, _) = key(&env, "alice-id");
    assert_eq!((p.wallet, p.wallet_key), (wallet, wallet_key));
    assert_eq!(p.did, Did::parse(&did).unwrap());
    let message = Ledger::binding_message(&wallet, &p.did);
    verify(
        &wallet_key,
        Domain::WalletBinding,
        &chain(),
        &message,
        &p.wallet_signature,
    )
    .unwrap();
    verify(
        &did_key,
        Domain::DidControl,
        &chain(),
        &message,
        &p.did_signature,
    )
    .unwrap();

    env.ok(&[
        "did",
        "consent-custody",
        "--chain-id",
        "alpha",
        "--custodian",
        "safe-custody",
        "--key",
        "alice-id",
        "--out",
        "custody.json",
    ]);
    let Payload::OpenCustodialWallet(c) = read(&env, "custody.json") else {
        panic!("an open_custodial_wallet payload")
    };
    assert_eq!(c.holder, p.did);
    let message = Ledger::custody_message(&"safe-custody".parse().unwrap(), &c.holder);
    verify(
        &did_key,
        Domain::CustodyConsent,
        &chain(),
        &message,
        &c.consent,
    )
    .unwrap();
}

#[test]
fn sr3_a_holder_authorizes_a_custodial_transfer_offline_for_one_custodian_and_instruction() {
    let env = env();
    for k in ["alice", "bob"] {
        env.ok(&["key", "new", k]);
    }
    let (alice, _) = key(&env, "alice");
    let (_, bob) = key(&env, "bob");
    let authorize = |extra: &[&str]| {
        let mut args = vec![
            "did",
            "authorize-transfer",
            "--chain-id",
            "alpha",
            "--custodian",
            "safe-custody",
            "--token",
            "T-1",
            "--amount",
            "40",
            "--number",
            "3",
            "--key",
            "alice",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let bob_text = bob.to_string();
    let args = authorize(&[
        "--to",
        &bob_text,
        "--reference",
        "INV-7",
        "--valid-for",
        "30m",
        "--out",
        "move.json",
    ]);
    env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let Payload::CustodialTransfer(p) = read(&env, "move.json") else {
        panic!("a custodial_transfer payload")
    };
    assert_eq!((p.to, p.amount.0, p.authorization.number), (bob, 40, 3));
    assert_eq!(p.authorization.key, alice);
    let now = tranche_service::now_ms();
    let until = p.authorization.valid_until.0;
    assert!(
        until > now + 29 * 60_000 && until <= now + 30 * 60_000,
        "{until}"
    );
    let message = Ledger::authorization_message(&"safe-custody".parse().unwrap(), &p);
    verify(
        &alice,
        Domain::CustodyAuthorization,
        &chain(),
        &message,
        &p.authorization.signature,
    )
    .unwrap();
    // For another custodian, the same signature does not verify.
    let other = Ledger::authorization_message(&"other-custody".parse().unwrap(), &p);
    assert!(verify(
        &alice,
        Domain::CustodyAuthorization,
        &chain(),
        &other,
        &p.authorization.signature
    )
    .is_err());
    // A wallet that is not one is refused before anything is signed.
    let args = authorize(&["--to", "nope"]);
    let out = env.fails_with(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("--to"), "{out}");
}

#[test]
fn a_wallet_owner_approves_a_settlement_offline() {
    let env = env();
    for k in ["alice", "bob", "carol"] {
        env.ok(&["key", "new", k]);
    }
    let (_, alice) = key(&env, "alice");
    let (bob_key, bob) = key(&env, "bob");
    env.build_payload(
        &format!(
            r#"{{"type":"settle","legs":[
                {{"token":"T-1","from":"{alice}","to":"{bob}","amount":"30"}},
                {{"token":"USD-C","from":"{bob}","to":"{alice}","amount":"3000"}}]}}"#
        ),
        "alice",
        "5",
        "s.json",
    );
    env.ok(&["tx", "approve", "s.json", "--key", "bob", "--out", "s.json"]);
    // Approving twice replaces the approval rather than adding another.
    env.ok(&["tx", "approve", "s.json", "--key", "bob", "--out", "s.json"]);
    let tx: Transaction = read(&env, "s.json");
    let Payload::Settle(p) = &tx.payload else {
        panic!("still a settlement")
    };
    assert_eq!(p.approvals.len(), 1);
    assert_eq!(p.approvals[0].key, bob_key);
    let digest = Ledger::settlement_digest(&tx.signer, 5, &p.legs);
    verify(
        &bob_key,
        Domain::Transaction,
        &chain(),
        &digest,
        &p.approvals[0].signature,
    )
    .unwrap();
    let out = env.fails_with(1, &["tx", "approve", "s.json", "--key", "alice"]);
    assert!(out.contains("settlement's signer"), "{out}");
    let out = env.fails_with(1, &["tx", "approve", "s.json", "--key", "carol"]);
    assert!(out.contains("gives nothing"), "{out}");
    env.ok(&[
        "tx",
        "sign",
        "s.json",
        "--key",
        "alice",
        "--out",
        "s.signed.json",
    ]);
}

#[test]
fn exit_codes_tell_usage_errors_from_failures() {
    let env = env();
    env.ok(&["key", "new", "alice"]);
    let (_, alice) = key(&env, "alice");
    let help = env.ok(&["--help"]);
    assert!(
        help.contains("Exit codes") && help.contains("4  not found"),
        "{help}"
    );
    // Usage: arguments clap refuses, and ones the command refuses.
    env.fails_with(2, &["tx", "build", "transfer", "--chain-id", "alpha"]);
    let out = env.fails_with(
        2,
        &[
            "tx",
            "build",
            "transfer",
            "--chain-id",
            "alpha",
            "--key",
            "alice",
            "--nonce",
            "0",
            "--token",
            "T-1",
            "--to",
            &alice.to_string(),
            "--amount",
            "1",
        ],
    );
    assert!(out.contains("--nonce starts at 1"), "{out}");
    env.fails_with(2, &["query", "status", "--node", "ftp://example"]);
    // A failure: no node listens there.
    env.fails_with(1, &["query", "status", "--node", "http://127.0.0.1:9"]);
    // An amount as a JSON number gets a message saying how amounts are written.
    std::fs::write(
        env.path("p.json"),
        format!(r#"{{"type":"transfer","token":"T-1","to":"{alice}","amount":1.5}}"#),
    )
    .unwrap();
    let out = env.fails_with(
        1,
        &[
            "tx",
            "build",
            "payload",
            "p.json",
            "--chain-id",
            "alpha",
            "--key",
            "alice",
            "--nonce",
            "1",
        ],
    );
    assert!(out.contains("decimal strings of whole units"), "{out}");
}
