//! The travel rule on a devnet, as its users meet it: Alice keeps deposit
//! tokens with the devnet's custodian and moves more than the AML policy's
//! travel-rule value to Bob's wallet at the devnet's exchange. Without the
//! travel rule the custodian refuses; with who sends and who receives
//! signed into her authorization (its digest the transfer's reference), the
//! custodian seals the IVMS101 message to the exchange, which takes it
//! only for its own trader's wallet and only from the organisation that
//! signed it, and the transfer goes through. The regulator asks both sides
//! for the message, sealed to its own key, and finds it bound to the
//! transfer on chain; a transfer carrying a digest nobody holds is a
//! finding. Nobody but a regulator gets a message back. The custodian's,
//! the exchange's and the regulator's services run from the devnet's
//! configs, once on SQLite and once on PostgreSQL.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tranche_api::client::NodeClient;
use tranche_api::travel::{NaturalPerson, TravelRuleMessage, TravelRuleParties, TravelTransfer};
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_service::signed::SignedClient;
use tranche_testkit::world::{claim_until, date};
use tranche_types::{ChainId, ClaimTopic, Payload, Transfer, Units, WalletAddress};

mod support;

use support::services::{
    bearer, did_command, did_of, healthy, issue_vc, json_of, kyc_people, login_as,
    login_devnet_staff, raw, send, send_final, start, stop_devnet_service, text, wait_for,
};

fn balance(rt: &tokio::runtime::Runtime, node: &NodeClient, wallet: &WalletAddress) -> u128 {
    rt.block_on(node.wallet(wallet))
        .unwrap()
        .data
        .balances
        .iter()
        .find(|b| b.token.as_str() == "USD-DEP")
        .map_or(0, |b| b.units.0)
}

fn person(family: &str, given: &str) -> NaturalPerson {
    NaturalPerson {
        primary_identifier: family.into(),
        secondary_identifier: given.into(),
        country_of_residence: Some("DE".into()),
        date_of_birth: None,
    }
}

#[test]
fn travel_rule_ivms101_data_travels_sealed_between_organisations_bound_to_the_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let base = 27_000 + (std::process::id() % 300) as u16 * 10;
    let mut cleanup = support::devnet_up(&dir, base);
    let devnet = DevnetFile::read(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = tmp.path();
    let pw = PathBuf::from(&devnet.password_file);
    let keys = PathBuf::from(&devnet.keys);
    let node = NodeClient::new(&devnet.nodes[0].api, None).unwrap();
    let chain: ChainId = devnet.chain_id.parse().unwrap();
    let bank = login_devnet_staff(t, &devnet, "bank");
    // The test runs the custodian's, the exchange's and the regulator's
    // services itself, from the devnet's configs, once per database.
    for (role, migrations) in [
        ("custodian", tranche_custodian::MIGRATIONS),
        ("exchange", tranche_exchange::MIGRATIONS),
        ("regulator", tranche_regulator::MIGRATIONS),
    ] {
        stop_devnet_service(&rt, &devnet, role, migrations);
    }
    // The devnet's ports of the three, and where each run's listen.
    let roles = [("custodian", 204), ("exchange", 205), ("regulator", 206)];
    let port_of = |i: usize, run: usize| base + 300 + 2 * i as u16 + run as u16;
    // A database of its own for each service, in each run.
    let by_role: Vec<Vec<String>> = roles
        .iter()
        .map(|_| support::services::test_databases(&rt, t))
        .collect();
    let runs: Vec<Vec<&String>> = (0..by_role[0].len())
        .map(|run| by_role.iter().map(|d| &d[run]).collect())
        .collect();
    for (run, databases) in runs.iter().enumerate() {
        let mut children = support::Killed(Vec::new());
        let mut apis = Vec::new();
        for (i, (role, _)) in roles.iter().enumerate() {
            let entry = devnet.services.iter().find(|s| s.role == *role).unwrap();
            let devnet_config = PathBuf::from(&entry.config);
            let mut text = std::fs::read_to_string(&devnet_config).unwrap();
            for (j, (_, offset)) in roles.iter().enumerate() {
                text = text.replace(
                    &format!("127.0.0.1:{}", base + offset),
                    &format!("127.0.0.1:{}", port_of(j, run)),
                );
            }
            let database = databases[i];
            let db_line = if database.is_empty() {
                String::new()
            } else {
                format!("database_url = \"{database}\"\n")
            };
            text = text.replace(
                "data_dir = \"service\"\n",
                &format!("data_dir = \"service-{run}\"\n{db_line}"),
            );
            let config = devnet_config.with_file_name(format!("{role}-{run}.toml"));
            std::fs::write(&config, text).unwrap();
            if *role == "regulator" {
                support::services::operator(t, role, &config, &format!("rop{run}"));
            }
            let api = format!("http://127.0.0.1:{}", port_of(i, run));
            let log = t.join(format!("{role}-{run}.log"));
            children.0.push(start(role, &config, &log));
            let up = (0..1200).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                healthy(&api)
            });
            assert!(
                up,
                "the {role}'s service did not come up: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            apis.push(api);
        }
        let (custodian, exchange, regulator) = (&apis[0], &apis[1], &apis[2]);
        let rop = format!("rop{run}");
        let o = login_as(t, regulator, &rop, &rop, &[&t.join(format!("{rop}.json"))]);
        assert!(o.status.success(), "{}", text(&o));
        run_once(&Run {
            t,
            rt: &rt,
            node: &node,
            chain: &chain,
            devnet: &devnet,
            keys: &keys,
            pw: &pw,
            bank: &bank.api,
            custodian,
            exchange,
            regulator,
            rop: &rop,
            run,
        });
        drop(children);
    }
    let _ = &mut cleanup;
}

/// What one run works with.
struct Run<'a> {
    t: &'a Path,
    rt: &'a tokio::runtime::Runtime,
    node: &'a NodeClient,
    chain: &'a ChainId,
    devnet: &'a DevnetFile,
    keys: &'a Path,
    pw: &'a Path,
    bank: &'a str,
    custodian: &'a str,
    exchange: &'a str,
    regulator: &'a str,
    rop: &'a str,
    run: usize,
}

fn run_once(r: &Run) {
    let Run {
        t,
        rt,
        node,
        chain,
        devnet,
        keys,
        pw,
        bank,
        custodian,
        exchange,
        regulator,
        rop,
        run,
    } = *r;
    let open = |name: &str| Arc::new(devnet.open_key(name).unwrap());
    let kyc = open("devnet-kyc");
    // Alice keeps deposit tokens with the custodian; Bob trades at the
    // exchange. Both have KYC claims on chain and credentials; Bob a
    // jurisdiction credential too.
    let people = kyc_people(t, (keys, pw), &["alice", "bob"], run);
    let (alice, bob) = (&people[0], &people[1]);
    issue_vc(
        keys,
        pw,
        "devnet-kyc",
        &did_of(&bob.1),
        &["jurisdiction", "--country", "DE"],
        &t.join(format!("{}.jur.json", bob.0)),
    );
    rt.block_on(async {
        for (_, k) in &people {
            let did = Ledger::did_of_key(&k.public_key());
            let claim = claim_until(&did, ClaimTopic::KYC, None, date("2099-12-31"));
            send(node, chain, &kyc, claim).await;
        }
        let binding = Payload::RegisterWallet(Ledger::sign_binding(chain, &alice.1, &alice.1));
        send(node, chain, &kyc, binding).await;
    });
    let session = |name: &str, at: &str, label: &str, creds: &[&str]| -> String {
        let s = format!("{name}-{label}");
        let files: Vec<PathBuf> = creds
            .iter()
            .map(|c| t.join(format!("{name}.{c}.json")))
            .collect();
        let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let o = login_as(t, at, name, &s, &files);
        assert!(o.status.success(), "{}", text(&o));
        s
    };
    let post = |api: &str, who: &str, path: &str, body: &str| {
        raw("POST", &format!("{api}{path}"), &bearer(t, who), body)
    };
    let get =
        |api: &str, who: &str, path: &str| raw("GET", &format!("{api}{path}"), &bearer(t, who), "");

    // 200,010 deposit tokens for Alice from the bank, 200,000 of them into
    // her custodial wallet.
    let alice_bank = session(&alice.0, bank, "bank", &["kyc"]);
    let (status, out) = post(
        bank,
        &alice_bank,
        "/accounts",
        &json!({"wallet": alice.1.address().to_string()}).to_string(),
    );
    assert_eq!(status, 200, "{out}");
    let (status, out) = post(
        bank,
        "bank-operator-1",
        "/deposits",
        &json!({"did": did_of(&alice.1), "amount": "200010", "reference": format!("TR-{run}")})
            .to_string(),
    );
    assert_eq!(status, 200, "{out}");
    wait_for("alice's deposit tokens", || {
        balance(rt, node, &alice.1.address()) == 200_010
    });
    let a = session(&alice.0, custodian, "custodian", &["kyc"]);
    let consent = did_command(
        t,
        &alice.0,
        &format!("{}.consent.json", alice.0),
        &[
            "consent-custody",
            "--chain-id",
            chain.as_str(),
            "--custodian",
            "devnet-custodian",
        ],
    );
    let (status, opened) = post(
        custodian,
        &a,
        "/holders",
        &std::fs::read_to_string(&consent).unwrap(),
    );
    assert_eq!(status, 200, "{opened}");
    let vault: WalletAddress = opened["wallet"].as_str().unwrap().parse().unwrap();
    wait_for("the custodial wallet, open", || {
        get(custodian, &a, "/holders/me").1["state"] == "open"
    });
    rt.block_on(send(
        node,
        chain,
        &alice.1,
        Payload::Transfer(Transfer {
            token: "USD-DEP".parse().unwrap(),
            to: vault,
            amount: Units(200_000),
            reference: None,
        }),
    ));
    wait_for("the custodian to see the deposit", || {
        get(custodian, &a, "/events").1[0]["balance"] == "200000"
    });

    // Bob becomes a trader: the exchange's wallet for him, bound.
    let b = session(&bob.0, exchange, "exchange", &["kyc", "jur"]);
    let (status, me) = post(exchange, &b, "/traders", "{}");
    assert_eq!(status, 200, "{me}");
    let bob_wallet = me["wallet"].as_str().unwrap().to_string();
    let wallet_consent = did_command(
        t,
        &bob.0,
        &format!("{}.wallet-consent.json", bob.0),
        &[
            "consent-wallet",
            "--chain-id",
            chain.as_str(),
            "--wallet",
            &bob_wallet,
        ],
    );
    let (status, out) = raw(
        "PUT",
        &format!("{exchange}/traders/me/wallet"),
        &bearer(t, &b),
        &std::fs::read_to_string(&wallet_consent).unwrap(),
    );
    assert_eq!(status, 200, "{out}");
    wait_for("bob's wallet bound", || {
        get(exchange, &b, "/traders/me").1["state"] == "active"
    });

    // 150,000 to Bob's wallet at the exchange: above the devnet policy's
    // travel-rule value (100,000), so without the travel rule, refused.
    let parties = TravelRuleParties {
        originator: person("Doe", "Alice"),
        beneficiary: person("Roe", "Bob"),
        beneficiary_vasp: "devnet-exchange".into(),
    };
    let parties_file = t.join(format!("parties-{run}.json"));
    std::fs::write(&parties_file, serde_json::to_vec(&parties).unwrap()).unwrap();
    let authorize = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "authorize-transfer",
            "--chain-id",
            chain.as_str(),
            "--custodian",
            "devnet-custodian",
            "--token",
            "USD-DEP",
            "--to",
            &bob_wallet,
            "--amount",
            "150000",
            "--number",
            "0",
        ];
        args.extend_from_slice(extra);
        std::fs::read_to_string(did_command(t, &alice.0, out, &args)).unwrap()
    };
    let (status, refused) = post(
        custodian,
        &a,
        "/instructions",
        &authorize(&format!("plain-{run}.json"), &[]),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("(travel_rule_required)"),
        "{refused}"
    );
    // Data other than what Alice signed for: refused.
    let parties_arg = parties_file.display().to_string();
    let signed = authorize(&format!("tr1-{run}.json"), &["--travel-rule", &parties_arg]);
    let mut other: Value = json_of(&signed);
    other["travel_rule"]["beneficiary"]["primary_identifier"] = json!("Someone-Else");
    let (status, unbound) = post(custodian, &a, "/instructions", &other.to_string());
    assert_eq!(status, 422, "{unbound}");
    assert!(
        unbound["message"]
            .as_str()
            .unwrap()
            .contains("(travel_rule_unbound)"),
        "{unbound}"
    );
    // As signed: the exchange takes the message, the transfer goes through.
    let signed = authorize(&format!("tr2-{run}.json"), &["--travel-rule", &parties_arg]);
    let (status, sent) = post(custodian, &a, "/instructions", &signed);
    assert_eq!(
        (status, &sent["state"]),
        (200, &json!("submitted")),
        "{sent}"
    );
    let id = sent["id"].as_str().unwrap().to_string();
    wait_for("the transfer applied", || {
        get(custodian, &a, &format!("/instructions/{id}")).1["state"] == "applied"
    });
    let tx = get(custodian, &a, &format!("/instructions/{id}")).1["tx"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_address: WalletAddress = bob_wallet.parse().unwrap();
    assert_eq!(balance(rt, node, &bob_address), 150_000);
    let message = TravelRuleMessage::new(
        chain.as_str(),
        "devnet-custodian",
        &parties,
        TravelTransfer {
            token: "USD-DEP".into(),
            from: vault.to_string(),
            to: bob_wallet.clone(),
            amount: Units(150_000),
            authorization: 0,
        },
    )
    .unwrap();
    let digest = message.digest().to_hex();
    assert_eq!(sent["reference"], digest.as_str(), "the digest is on chain");

    // The regulator asks both sides and finds the message bound.
    let (status, check) = post(
        regulator,
        rop,
        "/travel-rule/checks",
        &json!({ "tx": tx }).to_string(),
    );
    assert_eq!(
        (status, &check["verdict"]),
        (200, &json!("bound")),
        "{check}"
    );
    let sides: Vec<(&str, &str, &str)> = check["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["side"].as_str().unwrap(),
                s["org"].as_str().unwrap(),
                s["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sides,
        [
            ("originator", "devnet-custodian", "bound"),
            ("beneficiary", "devnet-exchange", "bound")
        ]
    );
    let (status, listed) = get(regulator, rop, "/travel-rule/checks");
    assert_eq!((status, &listed[0]["id"]), (200, &check["id"]));

    // A transfer whose reference is a digest nobody holds: a finding.
    let (fake_tx, _) = rt.block_on(send_final(
        node,
        chain,
        &alice.1,
        Payload::Transfer(Transfer {
            token: "USD-DEP".parse().unwrap(),
            to: bob_address,
            amount: Units(1),
            reference: Some("ab".repeat(32).parse().unwrap()),
        }),
    ));
    let (status, finding) = post(
        regulator,
        rop,
        "/travel-rule/checks",
        &json!({ "tx": fake_tx }).to_string(),
    );
    assert_eq!(
        (status, &finding["verdict"]),
        (200, &json!("findings")),
        "{finding}"
    );
    assert_eq!(finding["sides"][0]["result"], "missing", "{finding}");
    // No reference at all: not a travel-rule transfer.
    let (plain_tx, _) = rt.block_on(send_final(
        node,
        chain,
        &alice.1,
        Payload::Transfer(Transfer {
            token: "USD-DEP".parse().unwrap(),
            to: bob_address,
            amount: Units(1),
            reference: None,
        }),
    ));
    let (status, _) = post(
        regulator,
        rop,
        "/travel-rule/checks",
        &json!({ "tx": plain_tx }).to_string(),
    );
    assert_eq!(status, 400);

    // Only a regulator gets a message back; only a custodian or an
    // exchange sends one, and only for a trader's wallet.
    let signed_call = |key: &Arc<tranche_crypto::Keypair>,
                       org: &str,
                       method,
                       base: &str,
                       path: &str,
                       body: Vec<u8>| {
        let client = SignedClient::new(Arc::clone(key), chain.clone(), org);
        rt.block_on(async {
            let r = client.send(method, base, path, body).await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let custodian_key = open("devnet-custodian");
    let ask = |org: &str, at: &str, digest: &str| {
        signed_call(
            &open(org),
            org,
            reqwest::Method::GET,
            at,
            &format!("/travel-rule/{digest}"),
            Vec::new(),
        )
    };
    let other = "cd".repeat(32);
    for (org, at, d, expected) in [
        ("devnet-issuer", exchange, &digest, 403),
        ("devnet-custodian", exchange, &digest, 403),
        ("devnet-regulator", custodian, &other, 404),
    ] {
        assert_eq!(ask(org, at, d).0, expected, "{org} asks {at}");
    }
    let (status, sealed) = ask("devnet-regulator", custodian, &digest);
    assert_eq!(status, 200, "{sealed}");
    assert!(
        !sealed.to_string().contains("Alice"),
        "the message travels sealed"
    );
    // A message from the KYC provider, and one for a wallet that is not a
    // trader's.
    let to_exchange = |sender: &Arc<tranche_crypto::Keypair>, org: &str, to: &str| {
        let m = TravelRuleMessage::new(
            chain.as_str(),
            org,
            &parties,
            TravelTransfer {
                token: "USD-DEP".into(),
                from: vault.to_string(),
                to: to.into(),
                amount: Units(5),
                authorization: 9,
            },
        )
        .unwrap();
        let exchange_key = rt
            .block_on(node.organisation("devnet-exchange"))
            .unwrap()
            .unwrap()
            .data
            .key;
        let sealed = tranche_crypto::seal(
            &exchange_key,
            chain,
            m.digest().to_hex().as_bytes(),
            &serde_json::to_vec(&m).unwrap(),
            &mut tranche_crypto::rand_core::OsRng,
        )
        .unwrap();
        let body = json!({
            "digest": m.digest().to_hex(),
            "ephemeral": sealed.ephemeral,
            "ciphertext": sealed.ciphertext,
        });
        signed_call(
            sender,
            org,
            reqwest::Method::POST,
            exchange,
            "/travel-rule",
            serde_json::to_vec(&body).unwrap(),
        )
    };
    assert_eq!(to_exchange(&kyc, "devnet-kyc", &bob_wallet).0, 403);
    let (status, why) = to_exchange(
        &custodian_key,
        "devnet-custodian",
        &alice.1.address().to_string(),
    );
    assert_eq!(status, 422, "{why}");
    assert_eq!(
        to_exchange(&custodian_key, "devnet-custodian", &bob_wallet).0,
        200
    );
}
