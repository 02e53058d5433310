//! A regulator's freeze request to a token's issuer: what an alert becomes
//! when the regulator wants a wallet stopped. The regulator POSTs it,
//! signed with its on-chain key, to the issuer's service, whose staff
//! decide it like any other request; the freeze itself is the issuer's
//! transaction on chain, which the regulator sees in its follower.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest freeze request id: the regulator's organisation, a colon and
/// its number.
pub const FREEZE_ID_MAX: usize = 64;
/// Longest reason a regulator gives.
pub const FREEZE_REASON_MAX: usize = 500;

/// `POST /freeze-requests` at an issuer's service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// The regulator's id for it, `{regulator}:{number}`: a resend with
    /// the same id and content is the same request.
    pub id: String,
    /// The token whose wallet is to be frozen (the issuer is its agent).
    pub token: String,
    /// The wallet (`tr1…`).
    pub wallet: String,
    /// The alert it comes from: `{rule} on {subject}`.
    pub alert: String,
    /// Why, for the issuer's staff (no personal data).
    pub reason: String,
    /// SHA-256 of the alert's evidence as the regulator keeps it, hex: both
    /// sides name the same evidence when they speak of it later.
    pub evidence: String,
}

impl FreezeRequest {
    /// Checks the request's shape; the issuer checks the token and the
    /// wallet against the chain.
    pub fn check(&self, regulator: &str) -> Result<(), String> {
        let printable = |s: &str| !s.chars().any(char::is_control);
        match self.id.split_once(':') {
            Some((org, n))
                if org == regulator
                    && self.id.len() <= FREEZE_ID_MAX
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => {
                return Err(format!(
                    "id is {regulator}:<number>, at most {FREEZE_ID_MAX} bytes"
                ))
            }
        }
        if self.token.is_empty() || self.token.len() > 64 || !printable(&self.token) {
            return Err("token is a token's symbol".into());
        }
        if self.wallet.is_empty() || self.wallet.len() > 128 || !printable(&self.wallet) {
            return Err("wallet is a wallet address (tr1…)".into());
        }
        if self.alert.is_empty() || self.alert.len() > 256 || !printable(&self.alert) {
            return Err("alert is 1 to 256 bytes of printable text".into());
        }
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > FREEZE_REASON_MAX || !printable(reason) {
            return Err(format!(
                "reason is 1 to {FREEZE_REASON_MAX} characters of printable text"
            ));
        }
        if self.evidence.len() != 64 || !self.evidence.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("evidence is a SHA-256 hash in hex".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> FreezeRequest {
        FreezeRequest {
            id: "reg:7".into(),
            token: "ACME".into(),
            wallet: "tr1abc".into(),
            alert: "sanctioned on trade/11".into(),
            reason: "a sanctioned buyer".into(),
            evidence: "ab".repeat(32),
        }
    }

    #[test]
    fn a_freeze_request_names_its_regulator_and_is_bounded() {
        assert_eq!(request().check("reg"), Ok(()));
        assert!(request().check("other").is_err(), "another regulator's id");
        let mut r = request();
        r.id = "reg:x".into();
        assert!(r.check("reg").is_err());
        let mut r = request();
        r.reason = " ".into();
        assert!(r.check("reg").is_err());
        let mut r = request();
        r.evidence = "zz".repeat(32);
        assert!(r.check("reg").is_err());
        let mut r = request();
        r.wallet = "tr1\n".into();
        assert!(r.check("reg").is_err());
    }
}
