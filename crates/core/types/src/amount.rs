//! Quantities: token amounts and money. Integers only, with checked arithmetic;
//! an amount of money always travels with its currency and its decimals.

use crate::codec::{bytes_size, read_string, write_bytes};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why an amount could not be read or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is not a whole number of units.
    #[error("{0:?} is not a whole number of token units (digits only, e.g. 1000)")]
    NotUnits(String),
    /// The text is not a whole number of stake units.
    #[error("{0:?} is not a whole number of stake units (digits only, e.g. 1000)")]
    NotStake(String),
    /// The text is not an amount of money in the currency's decimals.
    #[error("{text:?} is not an amount of {code}: use digits with at most {decimals} decimal places, e.g. {example}")]
    NotMoney {
        /// The offending text.
        text: String,
        /// The currency expected.
        code: String,
        /// How many decimal places that currency has.
        decimals: u8,
        /// A well-formed example.
        example: String,
    },
    /// The currency code is not one this build knows; name its kind and decimals.
    #[error("unknown currency {0:?}: known are USD, EUR, KRW, JPY, GBP, CHF, SGD, BTC, ETH; a CBDC or other cash token is given by its code, kind and decimals")]
    UnknownCurrency(String),
    /// The currency code has the wrong shape.
    #[error("currency code {0:?} must be 2 to 12 uppercase letters or digits")]
    BadCurrencyCode(String),
    /// The currency's decimals are beyond what the type holds.
    #[error("a currency has at most {max} decimals; {0} were given", max = Currency::DECIMALS_MAX)]
    TooManyDecimals(u8),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} with {1}: different currencies")]
    CurrencyMismatch(String, String),
    /// The result would not fit.
    #[error("amount overflow")]
    Overflow,
    /// The result would be negative.
    #[error("amount underflow")]
    Underflow,
}

/// Declares a count of whole units: checked arithmetic, decimal text, JSON
/// as a string (a u128 does not survive a JavaScript number, and a JSON
/// number cannot say it is whole), and a fixed-width canonical encoding.
macro_rules! whole_amount {
    ($(#[$doc:meta])* $name:ident, $visitor:ident, $not:ident, $zero_doc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u128);

        impl $name {
            #[doc = $zero_doc]
            pub const ZERO: $name = $name(0);

            /// `self + other`, or `None` on overflow.
            pub fn checked_add(self, other: $name) -> Option<$name> {
                self.0.checked_add(other.0).map($name)
            }

            /// `self - other`, or `None` if `other` is larger.
            pub fn checked_sub(self, other: $name) -> Option<$name> {
                self.0.checked_sub(other.0).map($name)
            }

            /// Whether this is zero.
            pub fn is_zero(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = AmountError;
            fn from_str(s: &str) -> Result<Self, AmountError> {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AmountError::$not(s.chars().take(60).collect()));
                }
                s.parse::<u128>()
                    .map($name)
                    .map_err(|_| AmountError::$not(s.chars().take(60).collect()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        /// From JSON as decimal strings of whole units only: a JSON number is
        /// refused with a message saying so.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct $visitor;

                fn number<E: serde::de::Error>(shown: impl fmt::Display) -> E {
                    E::custom(format!(
                        "amounts are decimal strings of whole units, e.g. \"15\", not the JSON number {shown}"
                    ))
                }

                impl serde::de::Visitor<'_> for $visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an amount as a decimal string of whole units, e.g. \"15\"")
                    }

                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }

                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        Err(number(v))
                    }

                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        Err(number(v))
                    }

                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$name, E> {
                        Err(number(v))
                    }
                }

                d.deserialize_any($visitor)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                self.0.write(buf);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = u128::SIZE;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                Ok($name(u128::read_cfg(buf, &())?))
            }
        }
    };
}

whole_amount!(
    /// A number of security-token units. Tokens are indivisible (the paper splits
    /// an asset of price AP into AP/SP whole tokens), so one unit is one token.
    Units,
    UnitsVisitor,
    NotUnits,
    "No tokens."
);

whole_amount!(
    /// A number of stake units an organisation bonds or delegates (C-2).
    Stake,
    StakeVisitor,
    NotStake,
    "No stake."
);

/// What kind of money a currency is (F6-4, F6-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum CurrencyKind {
    /// Fiat money with an ISO 4217 code, held off chain by banks.
    Fiat = 0,
    /// A central-bank digital currency issued on chain by a CentralBank organisation.
    Cbdc = 1,
    /// A cryptocurrency such as BTC or ETH.
    Crypto = 2,
}

/// A currency: its code, its kind and how many decimal places its minor unit has.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "CurrencyJson")]
pub struct Currency {
    code: String,
    kind: CurrencyKind,
    decimals: u8,
}

/// The JSON form of a currency, checked on the way in like [`Currency::new`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrencyJson {
    code: String,
    kind: CurrencyKind,
    decimals: u8,
}

impl TryFrom<CurrencyJson> for Currency {
    type Error = AmountError;
    fn try_from(c: CurrencyJson) -> Result<Self, AmountError> {
        Currency::new(&c.code, c.kind, c.decimals)
    }
}

/// Currencies every node knows by code alone.
const KNOWN: &[(&str, CurrencyKind, u8)] = &[
    ("USD", CurrencyKind::Fiat, 2),
    ("EUR", CurrencyKind::Fiat, 2),
    ("KRW", CurrencyKind::Fiat, 0),
    ("JPY", CurrencyKind::Fiat, 0),
    ("GBP", CurrencyKind::Fiat, 2),
    ("CHF", CurrencyKind::Fiat, 2),
    ("SGD", CurrencyKind::Fiat, 2),
    ("BTC", CurrencyKind::Crypto, 8),
    ("ETH", CurrencyKind::Crypto, 18),
];

impl Currency {
    /// The most decimal places a currency may have (ETH's 18).
    pub const DECIMALS_MAX: u8 = 18;
    /// The longest currency code.
    pub const CODE_MAX: usize = 12;

    /// A currency by its code, kind and decimals, e.g. a CBDC `("DKRW", Cbdc, 0)`.
    pub fn new(code: &str, kind: CurrencyKind, decimals: u8) -> Result<Self, AmountError> {
        let ok_len = (2..=Self::CODE_MAX).contains(&code.len());
        let ok_chars = code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !ok_len || !ok_chars {
            return Err(AmountError::BadCurrencyCode(
                code.chars().take(20).collect(),
            ));
        }
        if decimals > Self::DECIMALS_MAX {
            return Err(AmountError::TooManyDecimals(decimals));
        }
        Ok(Self {
            code: code.to_string(),
            kind,
            decimals,
        })
    }

    /// A well-known currency by code: ISO 4217 fiat (USD, EUR, KRW, ...) or BTC, ETH.
    pub fn known(code: &str) -> Result<Self, AmountError> {
        KNOWN
            .iter()
            .find(|(c, _, _)| *c == code)
            .map(|(c, k, d)| Self {
                code: (*c).to_string(),
                kind: *k,
                decimals: *d,
            })
            .ok_or_else(|| AmountError::UnknownCurrency(code.chars().take(20).collect()))
    }

    /// The currency's code, e.g. `USD`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Fiat, CBDC or crypto.
    pub fn kind(&self) -> CurrencyKind {
        self.kind
    }

    /// Decimal places of the minor unit: 2 for USD (cents), 0 for KRW, 8 for BTC.
    pub fn decimals(&self) -> u8 {
        self.decimals
    }
}

impl Write for Currency {
    fn write(&self, buf: &mut impl BufMut) {
        write_bytes(self.code.as_bytes(), buf);
        (self.kind as u8).write(buf);
        self.decimals.write(buf);
    }
}

impl EncodeSize for Currency {
    fn encode_size(&self) -> usize {
        bytes_size(self.code.as_bytes()) + 2
    }
}

impl Read for Currency {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = read_string(buf, Self::CODE_MAX, "currency code")?;
        let kind = match u8::read_cfg(buf, &())? {
            0 => CurrencyKind::Fiat,
            1 => CurrencyKind::Cbdc,
            2 => CurrencyKind::Crypto,
            other => return Err(CodecError::InvalidEnum(other)),
        };
        let decimals = u8::read_cfg(buf, &())?;
        Currency::new(&code, kind, decimals)
            .map_err(|_| CodecError::Invalid("currency", "bad code or decimals"))
    }
}

/// An amount of money in integer minor units of its currency
/// (cents for USD, won for KRW, satoshi for BTC, wei for ETH).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units.
    pub minor: MinorUnits,
    /// The currency the amount is in.
    pub currency: Currency,
}

/// A count of a currency's minor units; a string in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinorUnits(pub u128);

impl Serialize for MinorUnits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MinorUnits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let units = Units::deserialize(d)?;
        Ok(MinorUnits(units.0))
    }
}

impl Money {
    /// `minor` minor units of `currency`.
    pub fn new(minor: u128, currency: Currency) -> Self {
        Self {
            minor: MinorUnits(minor),
            currency,
        }
    }

    /// Parses a decimal amount such as `100000`, `99.5` or `0.00000001` in
    /// `currency`, exactly: more decimal places than the currency has is an error.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Self, AmountError> {
        let decimals = usize::from(currency.decimals);
        let bad = || AmountError::NotMoney {
            text: text.chars().take(60).collect(),
            code: currency.code.clone(),
            decimals: currency.decimals,
            example: if decimals == 0 {
                "1500".to_string()
            } else {
                format!("1500.{}", "0".repeat(decimals))
            },
        };
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > decimals {
            return Err(bad());
        }
        if text.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        let scale = 10u128
            .checked_pow(currency.decimals.into())
            .ok_or(AmountError::Overflow)?;
        let whole: u128 = whole.parse().map_err(|_| bad())?;
        let frac_scaled: u128 = if frac.is_empty() {
            0
        } else {
            let f: u128 = frac.parse().map_err(|_| bad())?;
            let pad = 10u128.pow((decimals - frac.len()) as u32);
            f * pad
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac_scaled))
            .ok_or(AmountError::Overflow)?;
        Ok(Self::new(minor, currency))
    }

    /// `self + other`, in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, AmountError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .0
            .checked_add(other.minor.0)
            .ok_or(AmountError::Overflow)?;
        Ok(Money::new(minor, self.currency.clone()))
    }

    /// `self - other`, in the same currency, never below zero.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, AmountError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .0
            .checked_sub(other.minor.0)
            .ok_or(AmountError::Underflow)?;
        Ok(Money::new(minor, self.currency.clone()))
    }

    /// `self * n`, e.g. a price times a number of tokens.
    pub fn checked_mul(&self, n: u128) -> Result<Money, AmountError> {
        let minor = self.minor.0.checked_mul(n).ok_or(AmountError::Overflow)?;
        Ok(Money::new(minor, self.currency.clone()))
    }

    fn same_currency(&self, other: &Money) -> Result<(), AmountError> {
        if self.currency != other.currency {
            return Err(AmountError::CurrencyMismatch(
                self.currency.code.clone(),
                other.currency.code.clone(),
            ));
        }
        Ok(())
    }
}

/// `1234.56 USD`: the decimal amount and the code, exact.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = u32::from(self.currency.decimals);
        if decimals == 0 {
            return write!(f, "{} {}", self.minor.0, self.currency.code);
        }
        let scale = 10u128.pow(decimals);
        write!(
            f,
            "{}.{:0width$} {}",
            self.minor.0 / scale,
            self.minor.0 % scale,
            self.currency.code,
            width = decimals as usize
        )
    }
}

impl Write for Money {
    fn write(&self, buf: &mut impl BufMut) {
        self.minor.0.write(buf);
        self.currency.write(buf);
    }
}

impl EncodeSize for Money {
    fn encode_size(&self) -> usize {
        u128::SIZE + self.currency.encode_size()
    }
}

impl Read for Money {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let minor = u128::read_cfg(buf, &())?;
        let currency = Currency::read_cfg(buf, &())?;
        Ok(Money::new(minor, currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::known("USD").unwrap()
    }

    #[test]
    fn parses_decimal_amounts_exactly() {
        assert_eq!(Money::parse_decimal("100", usd()).unwrap().minor.0, 10_000);
        assert_eq!(Money::parse_decimal("99.5", usd()).unwrap().minor.0, 9_950);
        assert_eq!(Money::parse_decimal("0.01", usd()).unwrap().minor.0, 1);
        let btc = Currency::known("BTC").unwrap();
        assert_eq!(Money::parse_decimal("0.00000001", btc).unwrap().minor.0, 1);
        let eth = Currency::known("ETH").unwrap();
        assert_eq!(
            Money::parse_decimal("1", eth).unwrap().minor.0,
            1_000_000_000_000_000_000
        );
    }

    #[test]
    fn refuses_inexact_or_malformed_amounts() {
        for bad in ["", "1.", ".5", "0.001", "-1", "1e3", "1,000", "1.2.3", " 1"] {
            assert!(Money::parse_decimal(bad, usd()).is_err(), "{bad:?}");
        }
        let krw = Currency::known("KRW").unwrap();
        let err = Money::parse_decimal("1.5", krw).unwrap_err();
        assert!(
            err.to_string().contains("at most 0 decimal places"),
            "{err}"
        );
    }

    #[test]
    fn displays_with_the_currency_decimals() {
        assert_eq!(Money::new(123_456, usd()).to_string(), "1234.56 USD");
        assert_eq!(Money::new(5, usd()).to_string(), "0.05 USD");
        let krw = Currency::known("KRW").unwrap();
        assert_eq!(Money::new(100_000, krw).to_string(), "100000 KRW");
    }

    #[test]
    fn arithmetic_is_checked_and_currency_aware() {
        let a = Money::new(u128::MAX, usd());
        assert_eq!(
            a.checked_add(&Money::new(1, usd())),
            Err(AmountError::Overflow)
        );
        assert_eq!(
            Money::new(1, usd()).checked_sub(&Money::new(2, usd())),
            Err(AmountError::Underflow)
        );
        let eur = Currency::known("EUR").unwrap();
        assert!(matches!(
            Money::new(1, usd()).checked_add(&Money::new(1, eur)),
            Err(AmountError::CurrencyMismatch(_, _))
        ));
        assert_eq!(Units(u128::MAX).checked_add(Units(1)), None);
    }

    #[test]
    fn cbdc_currencies_are_declared_with_kind_and_decimals() {
        let c = Currency::new("DKRW", CurrencyKind::Cbdc, 0).unwrap();
        assert_eq!(c.kind(), CurrencyKind::Cbdc);
        assert!(Currency::new("usd", CurrencyKind::Fiat, 2).is_err());
        assert!(Currency::new("XYZ", CurrencyKind::Crypto, 19).is_err());
        assert!(Currency::known("XYZ").is_err());
    }

    #[test]
    fn amounts_given_as_json_numbers_are_refused_with_a_message_saying_why() {
        assert_eq!(serde_json::from_str::<Units>(r#""15""#).unwrap(), Units(15));
        for bad in ["15", "1.5", "-3"] {
            let e = serde_json::from_str::<Units>(bad).unwrap_err().to_string();
            assert!(e.contains("decimal strings of whole units"), "{bad}: {e}");
        }
        let e = serde_json::from_str::<Units>(r#""1.5""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number of token units"), "{e}");
    }

    #[test]
    fn currencies_from_json_are_checked() {
        let ok: Currency =
            serde_json::from_str(r#"{"code":"USD","kind":"fiat","decimals":2}"#).unwrap();
        assert_eq!(ok, Currency::known("USD").unwrap());
        for bad in [
            r#"{"code":"usd","kind":"fiat","decimals":2}"#,
            r#"{"code":"USD","kind":"fiat","decimals":200}"#,
            r#"{"code":"USD","kind":"fiat","decimals":2,"extra":1}"#,
        ] {
            assert!(serde_json::from_str::<Currency>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_parse_digits_only() {
        assert_eq!("1000".parse::<Units>().unwrap(), Units(1000));
        assert!("-1".parse::<Units>().is_err());
        assert!("1.0".parse::<Units>().is_err());
        assert!("".parse::<Units>().is_err());
        assert!("340282366920938463463374607431768211456"
            .parse::<Units>()
            .is_err());
    }
}
