//! The travel rule between organisations: who sends and who receives a
//! transfer above the AML policy's threshold, in IVMS101 (the interVASP
//! Messaging Standard) terms, with the transfer it goes with. The message
//! never goes on chain: its digest does, as the transfer's reference, so
//! whoever holds the message can show it belongs to exactly that transfer.
//! Between organisations it travels sealed to the receiver's on-chain key.

use serde::{Deserialize, Serialize};
use tranche_types::{Hash, Units};
use utoipa::ToSchema;

/// The label of a travel-rule message's digest.
pub const TRAVEL_RULE_DOMAIN: &[u8] = b"tranche/travel-rule/v1";
/// Longest name part, in characters.
pub const NAME_MAX: usize = 100;

/// A natural person as IVMS101 names one (the parts Tranche carries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NaturalPerson {
    /// The family name (IVMS101 `primaryIdentifier`).
    pub primary_identifier: String,
    /// The given names (IVMS101 `secondaryIdentifier`).
    pub secondary_identifier: String,
    /// ISO 3166-1 alpha-2 country of residence, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_of_residence: Option<String>,
    /// Date of birth, `YYYY-MM-DD`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
}

impl NaturalPerson {
    fn check(&self, who: &str) -> Result<(), String> {
        for (part, v) in [
            ("primary_identifier", &self.primary_identifier),
            ("secondary_identifier", &self.secondary_identifier),
        ] {
            let n = v.trim().chars().count();
            if n == 0 || n > NAME_MAX || v.chars().any(char::is_control) {
                return Err(format!(
                    "{who}.{part} is 1 to {NAME_MAX} characters of printable text"
                ));
            }
        }
        if let Some(c) = &self.country_of_residence {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "{who}.country_of_residence is an ISO 3166-1 alpha-2 code such as DE"
                ));
            }
        }
        if let Some(d) = &self.date_of_birth {
            let b = d.as_bytes();
            let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
            if b.len() != 10
                || b[4] != b'-'
                || b[7] != b'-'
                || !digits(0..4)
                || !digits(5..7)
                || !digits(8..10)
            {
                return Err(format!("{who}.date_of_birth is YYYY-MM-DD"));
            }
        }
        Ok(())
    }
}

/// What a holder gives for a transfer the travel rule covers: who sends,
/// who receives, and the organisation that keeps the receiving wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TravelRuleParties {
    /// The person sending.
    pub originator: NaturalPerson,
    /// The person receiving.
    pub beneficiary: NaturalPerson,
    /// The organisation that keeps the beneficiary's wallet (its on-chain id).
    pub beneficiary_vasp: String,
}

/// The transfer a message goes with, as the chain will carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TravelTransfer {
    /// The token.
    pub token: String,
    /// The originator's wallet.
    pub from: String,
    /// The beneficiary's wallet.
    pub to: String,
    /// Units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The holder's authorization number: one message per transfer.
    pub authorization: u64,
}

/// IVMS101's name identifier of a natural person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameIdentifier {
    /// Family name.
    pub primary_identifier: String,
    /// Given names.
    pub secondary_identifier: String,
    /// `LEGL`: the legal name.
    pub name_identifier_type: String,
}

/// IVMS101's natural person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101NaturalPerson {
    /// Its names.
    pub name: Ivms101Name,
    /// Country of residence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_of_residence: Option<String>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
}

/// IVMS101's name of a natural person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101Name {
    /// The names.
    pub name_identifier: Vec<NameIdentifier>,
}

/// IVMS101's person: here always a natural person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101Person {
    /// The natural person.
    pub natural_person: Ivms101NaturalPerson,
}

/// IVMS101's originator: persons and account numbers (wallets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101Originator {
    /// The persons.
    pub originator_persons: Vec<Ivms101Person>,
    /// Their wallets.
    pub account_number: Vec<String>,
}

/// IVMS101's beneficiary: persons and account numbers (wallets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101Beneficiary {
    /// The persons.
    pub beneficiary_persons: Vec<Ivms101Person>,
    /// Their wallets.
    pub account_number: Vec<String>,
}

/// IVMS101's VASP: a legal person named by its on-chain organisation id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101Vasp {
    /// The organisation's legal name as the chain knows it.
    pub legal_person_name: String,
}

/// The IVMS101 data of one transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ivms101 {
    /// Who sends.
    pub originator: Ivms101Originator,
    /// Who receives.
    pub beneficiary: Ivms101Beneficiary,
    /// The organisation sending.
    #[serde(rename = "originatingVASP")]
    pub originating_vasp: Ivms101Vasp,
    /// The organisation receiving.
    #[serde(rename = "beneficiaryVASP")]
    pub beneficiary_vasp: Ivms101Vasp,
}

/// A travel-rule message: the IVMS101 data and the transfer, on one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TravelRuleMessage {
    /// The chain.
    pub chain_id: String,
    /// Who sends and receives.
    pub ivms101: Ivms101,
    /// The transfer.
    pub transfer: TravelTransfer,
}

fn person(p: &NaturalPerson) -> Ivms101Person {
    Ivms101Person {
        natural_person: Ivms101NaturalPerson {
            name: Ivms101Name {
                name_identifier: vec![NameIdentifier {
                    primary_identifier: p.primary_identifier.trim().to_string(),
                    secondary_identifier: p.secondary_identifier.trim().to_string(),
                    name_identifier_type: "LEGL".into(),
                }],
            },
            country_of_residence: p.country_of_residence.clone(),
            date_of_birth: p.date_of_birth.clone(),
        },
    }
}

impl TravelRuleMessage {
    /// The message for `transfer` sent by `originating_vasp` with the
    /// holder's `parties`, on `chain_id`: what the holder's authorization
    /// names by its digest, and what the originating organisation sends.
    pub fn new(
        chain_id: &str,
        originating_vasp: &str,
        parties: &TravelRuleParties,
        transfer: TravelTransfer,
    ) -> Result<TravelRuleMessage, String> {
        parties.originator.check("originator")?;
        parties.beneficiary.check("beneficiary")?;
        let vasp = &parties.beneficiary_vasp;
        if vasp.is_empty() || vasp.len() > 64 || vasp.chars().any(char::is_control) {
            return Err("beneficiary_vasp is an organisation's on-chain id".into());
        }
        Ok(TravelRuleMessage {
            chain_id: chain_id.into(),
            ivms101: Ivms101 {
                originator: Ivms101Originator {
                    originator_persons: vec![person(&parties.originator)],
                    account_number: vec![transfer.from.clone()],
                },
                beneficiary: Ivms101Beneficiary {
                    beneficiary_persons: vec![person(&parties.beneficiary)],
                    account_number: vec![transfer.to.clone()],
                },
                originating_vasp: Ivms101Vasp {
                    legal_person_name: originating_vasp.into(),
                },
                beneficiary_vasp: Ivms101Vasp {
                    legal_person_name: vasp.clone(),
                },
            },
            transfer,
        })
    }

    /// Its digest: the reference the transfer carries on chain.
    pub fn digest(&self) -> Hash {
        let json = serde_json::to_vec(self).expect("a travel-rule message serializes");
        Hash::digest(TRAVEL_RULE_DOMAIN, &json)
    }
}

/// A travel-rule message on its way between organisations (`POST
/// /travel-rule`, and the answer to `GET /travel-rule/{digest}`): sealed to
/// the receiving organisation's on-chain key, bound to its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedTravelRule {
    /// The message's digest, hex: the transfer's reference on chain.
    pub digest: String,
    /// The ephemeral X25519 key, hex.
    pub ephemeral: String,
    /// The sealed message, hex.
    pub ciphertext: String,
}

/// The most bytes of a sealed message's ciphertext, hex.
pub const SEALED_TRAVEL_RULE_MAX: usize = 64 * 1024;

impl SealedTravelRule {
    /// Checks the shape.
    pub fn check(&self) -> Result<(), String> {
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if self.digest.len() != 64 || !hex(&self.digest) {
            return Err("digest is a SHA-256 hash in hex".into());
        }
        if self.ephemeral.len() != 64 || !hex(&self.ephemeral) {
            return Err("ephemeral is a 32-byte key in hex".into());
        }
        if self.ciphertext.is_empty()
            || self.ciphertext.len() > SEALED_TRAVEL_RULE_MAX
            || !hex(&self.ciphertext)
        {
            return Err(format!(
                "ciphertext is 1 to {SEALED_TRAVEL_RULE_MAX} hex digits"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties() -> TravelRuleParties {
        TravelRuleParties {
            originator: NaturalPerson {
                primary_identifier: "Doe".into(),
                secondary_identifier: "Jane".into(),
                country_of_residence: Some("DE".into()),
                date_of_birth: Some("1980-02-29".into()),
            },
            beneficiary: NaturalPerson {
                primary_identifier: "Roe".into(),
                secondary_identifier: "Richard".into(),
                country_of_residence: None,
                date_of_birth: None,
            },
            beneficiary_vasp: "an-exchange".into(),
        }
    }

    fn transfer(amount: u128) -> TravelTransfer {
        TravelTransfer {
            token: "USD-DEP".into(),
            from: "tr1from".into(),
            to: "tr1to".into(),
            amount: Units(amount),
            authorization: 3,
        }
    }

    #[test]
    fn a_message_is_ivms101_and_its_digest_names_exactly_one_transfer() {
        let m = TravelRuleMessage::new("chain", "a-custodian", &parties(), transfer(5)).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        let originator = &json["ivms101"]["originator"];
        assert_eq!(
            originator["originatorPersons"][0]["naturalPerson"]["name"]["nameIdentifier"][0]
                ["primaryIdentifier"],
            "Doe"
        );
        assert_eq!(originator["accountNumber"][0], "tr1from");
        assert_eq!(
            json["ivms101"]["beneficiaryVASP"]["legalPersonName"],
            "an-exchange"
        );
        let again =
            TravelRuleMessage::new("chain", "a-custodian", &parties(), transfer(5)).unwrap();
        assert_eq!(m.digest(), again.digest());
        let other =
            TravelRuleMessage::new("chain", "a-custodian", &parties(), transfer(6)).unwrap();
        assert_ne!(m.digest(), other.digest(), "another amount");
        let back: TravelRuleMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back.digest(), m.digest());
    }

    #[test]
    fn names_countries_and_dates_are_checked() {
        let mut p = parties();
        p.originator.primary_identifier = " ".into();
        assert!(TravelRuleMessage::new("c", "v", &p, transfer(1)).is_err());
        let mut p = parties();
        p.beneficiary.country_of_residence = Some("Germany".into());
        assert!(TravelRuleMessage::new("c", "v", &p, transfer(1)).is_err());
        let mut p = parties();
        p.originator.date_of_birth = Some("29.02.1980".into());
        assert!(TravelRuleMessage::new("c", "v", &p, transfer(1)).is_err());
    }
}
