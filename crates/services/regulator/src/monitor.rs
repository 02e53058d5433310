//! The monitoring rules, each named and pure: over one report's settled
//! trades, the AML policy in force at each trade's block and the
//! identities the regulator linked, they say which trades or identities
//! need a look, with the evidence.
//!
//! - `wash_trade`: the same identity, or two the regulator linked, on both
//!   sides of a trade.
//! - `sanctioned`: a side of a trade on the sanctions list in force.
//! - `structuring`: one identity with `structuring_count` or more trades
//!   just under the policy's large value (within `structuring_margin_bps`).
//! - `velocity`: one identity in more than `velocity_trades` trades in one
//!   report.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use tranche_api::report::ReportedTrade;
use tranche_types::AmlPolicy;

/// The thresholds of the rules that have them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Trades just under the large value that make structuring.
    pub structuring_count: u32,
    /// How far under, in basis points of the large value.
    pub structuring_margin_bps: u32,
    /// Trades in one report above which an identity is too fast.
    pub velocity_trades: u32,
}

/// One rule's hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// The rule: `wash_trade`, `sanctioned`, `structuring`, `velocity`.
    pub rule: String,
    /// What it is about: `trade/{id}` or `did/{did}`.
    pub subject: String,
    /// What was seen.
    pub detail: String,
    /// The trades concerned, as reported.
    pub trades: Vec<u64>,
}

/// Runs every rule over `trades` (one report's); `policy_at` gives the
/// policy governing a block, `linked` the pairs of identities the
/// regulator linked (both orders).
pub fn monitor<'p>(
    trades: &[ReportedTrade],
    policy_at: impl Fn(u64) -> Option<&'p AmlPolicy>,
    linked: &HashSet<(String, String)>,
    rules: &Rules,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    // The linked pairs borrowed, so a trade is looked up without copying
    // its two DIDs.
    let linked: HashSet<(&str, &str)> = linked
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let settled = || trades.iter().filter(|t| t.state == "settled");
    for t in settled() {
        if t.buyer == t.seller || linked.contains(&(t.buyer.as_str(), t.seller.as_str())) {
            alerts.push(Alert {
                rule: "wash_trade".into(),
                subject: format!("trade/{}", t.trade),
                detail: if t.buyer == t.seller {
                    format!("{} bought from itself", t.buyer)
                } else {
                    format!(
                        "{} bought from {}, an identity linked to it",
                        t.buyer, t.seller
                    )
                },
                trades: vec![t.trade],
            });
        }
        if let Some(p) = policy_at(t.height) {
            let hit: Vec<&str> = [&t.buyer, &t.seller]
                .into_iter()
                .filter(|d| p.is_sanctioned(d))
                .map(String::as_str)
                .collect();
            if !hit.is_empty() {
                alerts.push(Alert {
                    rule: "sanctioned".into(),
                    subject: format!("trade/{}", t.trade),
                    detail: format!(
                        "{} on the sanctions list in force at block {}",
                        hit.join(" and "),
                        t.height
                    ),
                    trades: vec![t.trade],
                });
            }
        }
    }
    // Per identity: trades just under the large value, and how many.
    let mut under: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    let mut count: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for t in settled() {
        for side in [&t.buyer, &t.seller] {
            count.entry(side).or_default().push(t.trade);
        }
        let Some(large) = policy_at(t.height)
            .and_then(|p| p.limit(&t.quote))
            .map(|l| l.large_value.0)
            .filter(|v| *v > 0)
        else {
            continue;
        };
        let floor = large - large * u128::from(rules.structuring_margin_bps) / 10_000;
        if (floor..large).contains(&t.value.0) {
            for side in [&t.buyer, &t.seller] {
                under.entry((side, &t.quote)).or_default().push(t.trade);
            }
        }
    }
    for ((did, quote), ids) in under {
        if ids.len() >= rules.structuring_count as usize {
            alerts.push(Alert {
                rule: "structuring".into(),
                subject: format!("did/{did}/{quote}"),
                detail: format!(
                    "{did} traded {} times just under the large value in {quote}",
                    ids.len()
                ),
                trades: ids,
            });
        }
    }
    for (did, ids) in count {
        if ids.len() > rules.velocity_trades as usize {
            alerts.push(Alert {
                rule: "velocity".into(),
                subject: format!("did/{did}"),
                detail: format!(
                    "{did} was in {} trades in one report; more than {} is unusual",
                    ids.len(),
                    rules.velocity_trades
                ),
                trades: ids,
            });
        }
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;
    use tranche_types::{AmlLimit, BoundedVec, Did, Units};

    fn trade(id: u64, buyer: &str, seller: &str, value: u128) -> ReportedTrade {
        ReportedTrade {
            trade: id,
            matched_ms: 0,
            token: "T".into(),
            quote: "USD".into(),
            quote_on_chain: false,
            price: 1,
            quantity: value as u64,
            value: Units(value),
            buyer: buyer.into(),
            buyer_wallet: "wb".into(),
            seller: seller.into(),
            seller_wallet: "ws".into(),
            fee_buyer: Units(0),
            fee_seller: Units(0),
            state: "settled".into(),
            tx: format!("tx{id}"),
            height: 5,
        }
    }

    fn policy(sanctioned: &[&str]) -> AmlPolicy {
        AmlPolicy {
            report_period_secs: 60,
            limits: BoundedVec(vec![AmlLimit {
                asset: "USD".parse().unwrap(),
                large_value: Units(10_000),
                daily_value_max: Units(0),
                travel_rule_value: Units(0),
            }]),
            blocked_countries: BoundedVec::default(),
            sanctioned: BoundedVec(sanctioned.iter().map(|d| Did::parse(d).unwrap()).collect()),
        }
    }

    const RULES: Rules = Rules {
        structuring_count: 3,
        structuring_margin_bps: 1_000,
        velocity_trades: 4,
    };

    fn rules_hit(trades: &[ReportedTrade], p: &AmlPolicy, linked: &[(&str, &str)]) -> Vec<String> {
        let linked: HashSet<(String, String)> = linked
            .iter()
            .flat_map(|(a, b)| {
                [
                    (a.to_string(), b.to_string()),
                    (b.to_string(), a.to_string()),
                ]
            })
            .collect();
        monitor(trades, |_| Some(p), &linked, &RULES)
            .into_iter()
            .map(|a| format!("{} {}", a.rule, a.subject))
            .collect()
    }

    #[test]
    fn f6_9_each_monitoring_rule_fires_on_what_it_names_and_not_otherwise() {
        let clean = policy(&[]);
        let (a, b, c) = ("did:key:a", "did:key:b", "did:key:c");
        let plain = [trade(1, a, b, 100), trade(2, b, c, 200)];
        assert!(rules_hit(&plain, &clean, &[]).is_empty());
        // Wash trades: the same identity, or linked ones.
        assert_eq!(
            rules_hit(&[trade(1, a, a, 100)], &clean, &[]),
            ["wash_trade trade/1"]
        );
        assert_eq!(rules_hit(&plain, &clean, &[(b, c)]), ["wash_trade trade/2"]);
        // A sanctioned identity on either side.
        assert_eq!(
            rules_hit(&plain, &policy(&[c]), &[]),
            ["sanctioned trade/2"]
        );
        // Three trades of one identity just under the large value (10,000,
        // less 10 %): structuring; two, or one at the value, are not.
        let under = [
            trade(1, a, b, 9_500),
            trade(2, a, c, 9_000),
            trade(3, a, b, 9_999),
        ];
        assert_eq!(
            rules_hit(&under, &clean, &[]),
            ["structuring did/did:key:a/USD"]
        );
        assert!(rules_hit(&under[..2], &clean, &[]).is_empty());
        let at = [
            trade(1, a, b, 9_500),
            trade(2, a, c, 8_999),
            trade(3, a, b, 10_000),
        ];
        assert!(rules_hit(&at, &clean, &[]).is_empty());
        // Velocity: more than four trades of one identity.
        let fast: Vec<_> = (1..=5)
            .map(|i| trade(i, a, if i % 2 == 0 { b } else { c }, 1))
            .collect();
        assert_eq!(rules_hit(&fast, &clean, &[]), ["velocity did/did:key:a"]);
        // A failed settlement moved nothing: no rule looks at it.
        let mut failed = trade(1, a, a, 100);
        failed.state = "failed".into();
        assert!(rules_hit(&[failed], &policy(&[a]), &[]).is_empty());
    }
}
