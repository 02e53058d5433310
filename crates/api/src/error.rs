//! The node API's error codes: one table, each code with its HTTP status.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $status:literal; )*) => {
        /// Why the node API refused a request. Serialized as its snake_case name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable name, e.g. `nonce_used`.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The code with this name, if there is one.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name { $($name => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// The request is malformed: a path, query or body that does not parse.
    BadRequest = "bad_request", 400;
    /// The thing asked for does not exist on this node (yet).
    NotFound = "not_found", 404;
    /// A batch is larger than the API takes.
    TooLarge = "too_large", 413;
    /// The transaction is larger than a block may carry.
    TxTooLarge = "tx_too_large", 422;
    /// The transaction's signature or form is invalid.
    TxInvalid = "tx_invalid", 422;
    /// The transaction's `valid_until` has passed.
    TxExpired = "tx_expired", 422;
    /// The transaction stays valid for longer than the node accepts.
    TxValidityTooLong = "tx_validity_too_long", 422;
    /// The signer's nonce is used already.
    NonceUsed = "nonce_used", 409;
    /// The nonce is too far ahead of the signer's next one.
    NonceTooFar = "nonce_too_far", 422;
    /// Another pending transaction holds this signer and nonce.
    NonceTaken = "nonce_taken", 409;
    /// The mempool is full: try again shortly.
    MempoolFull = "mempool_full", 503;
    /// The node's storage failed; its log says why.
    Storage = "storage", 500;
}

impl ErrorCode {
    /// Whether the code refuses the transaction itself (its form, size,
    /// validity or nonce), so that sending it again unchanged cannot help;
    /// `mempool_full` and `storage` are the node's and may pass on a retry.
    pub fn refuses_transaction(self) -> bool {
        matches!(
            self,
            ErrorCode::TooLarge
                | ErrorCode::TxTooLarge
                | ErrorCode::TxInvalid
                | ErrorCode::TxExpired
                | ErrorCode::TxValidityTooLong
                | ErrorCode::NonceUsed
                | ErrorCode::NonceTooFar
                | ErrorCode::NonceTaken
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of every error answer: a stable code and a message a person
/// can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// The specifics.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_round_trip_and_carry_error_statuses() {
        let mut names = BTreeSet::new();
        for c in ErrorCode::ALL {
            assert!(names.insert(c.name()), "duplicate {c}");
            assert_eq!(ErrorCode::from_name(c.name()), Some(*c));
            assert!((400..600).contains(&c.status()), "{c}");
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
    }

    #[test]
    fn every_code_is_documented_in_the_api_doc() {
        let doc = include_str!("../../../docs/API.md");
        for c in ErrorCode::ALL {
            let cell = format!("`{} {}`", c.status(), c.name());
            assert!(doc.contains(&cell), "docs/API.md does not name {cell}");
        }
    }
}
