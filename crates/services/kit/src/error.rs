//! The role services' answers when they refuse: a stable code, its HTTP
//! status, and a message a person can act on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

macro_rules! service_codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $status:literal; )*) => {
        /// Why a role service refused a request. Serialized as its snake_case name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ServiceCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ServiceCode {
            /// Every code.
            pub const ALL: &'static [ServiceCode] = &[$(ServiceCode::$variant,)*];

            /// The stable name, e.g. `unauthenticated`.
            pub fn name(self) -> &'static str {
                match self { $(ServiceCode::$variant => $name,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self { $(ServiceCode::$variant => $status,)* }
            }
        }
    };
}

service_codes! {
    /// The body, path or query does not parse or is out of bounds.
    BadRequest = "bad_request", 400;
    /// No session: log in with a presentation first (`POST /auth/challenge`, `POST /auth/session`).
    Unauthenticated = "unauthenticated", 401;
    /// The session or signed request is valid but lacks the role or credential this needs.
    Forbidden = "forbidden", 403;
    /// The thing asked for does not exist.
    NotFound = "not_found", 404;
    /// The request conflicts with the thing's state (decided already, same person twice, ...).
    Conflict = "conflict", 409;
    /// The login challenge is unknown, used or expired: ask for a new one.
    ChallengeUnknown = "challenge_unknown", 401;
    /// The presentation or a credential in it does not verify.
    PresentationInvalid = "presentation_invalid", 401;
    /// The signed request's signature is missing or does not verify.
    SignatureInvalid = "signature_invalid", 401;
    /// The signed request's time is too far from the service's clock.
    StaleRequest = "stale_request", 401;
    /// The signed request's nonce was seen already.
    ReplayedRequest = "replayed_request", 401;
    /// The body is larger than the service takes.
    TooLarge = "too_large", 413;
    /// The request was decided and refused by the service's policy; the
    /// message says why, and the refusal is on the record.
    Refused = "refused", 422;
    /// The node could not be reached or refused; try again shortly.
    NodeUnavailable = "node_unavailable", 503;
    /// The service failed; its log says why.
    Internal = "internal", 500;
}

/// A refusal: its code and a message a person can act on.
#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, thiserror::Error,
)]
#[error("{code:?}: {message}")]
pub struct ServiceError {
    /// The stable code.
    pub code: ServiceCode,
    /// What went wrong and what to do.
    pub message: String,
}

impl ServiceError {
    /// A refusal with `code` and `message`.
    pub fn new(code: ServiceCode, message: impl Into<String>) -> ServiceError {
        ServiceError {
            code,
            message: message.into(),
        }
    }

    /// The node could not answer: the caller tries again shortly.
    pub fn unavailable(e: impl std::fmt::Display) -> ServiceError {
        ServiceError::new(ServiceCode::NodeUnavailable, e.to_string())
    }

    /// A fault of the service itself: logged in full, answered in general.
    pub fn internal(what: &str, error: impl std::fmt::Display) -> ServiceError {
        tracing::error!(%error, "{what}");
        ServiceError::new(
            ServiceCode::Internal,
            format!("{what} failed; see the service log"),
        )
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> ServiceError {
        ServiceError::internal("the database", e)
    }
}

impl From<tranche_vault::VaultError> for ServiceError {
    fn from(e: tranche_vault::VaultError) -> ServiceError {
        match e {
            tranche_vault::VaultError::Invalid(m) => ServiceError::new(ServiceCode::BadRequest, m),
            other => ServiceError::internal("the vault", other),
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_with_its_status() {
        let doc = include_str!("../../../../docs/API.md");
        for code in ServiceCode::ALL {
            let cell = format!("`{} {}`", code.status(), code.name());
            assert!(doc.contains(&cell), "docs/API.md does not name {cell}");
        }
    }
}
