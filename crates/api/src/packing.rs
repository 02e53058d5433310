//! A compact binary form for records that repeat a few strings (a token,
//! an exchange's wallets, their DIDs, a kind): each distinct string is
//! written once, in a table before the rest, and named by its number
//! (u32, `u32::MAX` for none); integers are little-endian. Reading it back
//! is a copy where JSON is a parse, and it is a fraction of JSON's size.
//!
//! The form is canonical: strings are numbered in the order they are
//! first used, every string in the table is used and none twice, a flag is
//! 0 or 1 and an absent number is written as zero, a transaction's hash
//! is its 32 bytes whenever it is lower-case hex of them. The reader
//! refuses anything else, so one record has exactly one form and a hash
//! over the bytes is a hash over the record.

// The strings' table is looked up once per string written (six times a
// movement): foldhash, not SipHash, with which packing a block's movements
// took a tenth of the regulator's CPU.
use foldhash::{HashMap, HashSet};
use tranche_types::Hash;

/// The number written for an absent string.
const NONE: u32 = u32::MAX;

/// What is wrong with a packed form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackError(pub &'static str);

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PackError {}

/// Writes a packed form: strings numbered as they first come.
#[derive(Debug)]
pub struct Packer<'a> {
    strings: Vec<&'a str>,
    numbers: HashMap<&'a str, u32>,
    body: Vec<u8>,
}

impl<'a> Packer<'a> {
    /// A packer whose body will take about `capacity` bytes.
    pub fn new(capacity: usize) -> Packer<'a> {
        Packer {
            strings: Vec::new(),
            numbers: HashMap::default(),
            body: Vec::with_capacity(capacity),
        }
    }

    /// A string, or none.
    pub fn str(&mut self, s: Option<&'a str>) {
        let n = match s {
            None => NONE,
            Some(s) => *self.numbers.entry(s).or_insert_with(|| {
                self.strings.push(s);
                (self.strings.len() - 1) as u32
            }),
        };
        self.u32(n);
    }

    /// Bytes as they are (a hash, a signature).
    pub fn bytes(&mut self, b: &[u8]) {
        self.body.extend_from_slice(b);
    }

    /// A flag.
    pub fn flag(&mut self, b: bool) {
        self.body.push(u8::from(b));
    }

    /// A u32.
    pub fn u32(&mut self, n: u32) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    /// A u64.
    pub fn u64(&mut self, n: u64) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    /// A u64 or none (a flag, then the number or zero).
    pub fn opt_u64(&mut self, n: Option<u64>) {
        self.flag(n.is_some());
        self.u64(n.unwrap_or(0));
    }

    /// A u128.
    pub fn u128(&mut self, n: u128) {
        self.body.extend_from_slice(&n.to_le_bytes());
    }

    /// A hash written as text: its 32 bytes if the text is lower-case hex
    /// of them (as every hash Tranche writes is), else the text.
    pub fn hash_text(&mut self, text: &'a str) {
        match Hash::from_hex(text) {
            Ok(h) if is_hash_hex(text) => {
                self.flag(false);
                self.bytes(&h.0);
            }
            _ => {
                self.flag(true);
                self.str(Some(text));
            }
        }
    }

    /// The packed form: `head`, the string table, the body.
    pub fn finish(self, head: &[u8]) -> Vec<u8> {
        let table: usize = self.strings.iter().map(|s| 4 + s.len()).sum();
        let mut out = Vec::with_capacity(head.len() + 4 + table + self.body.len());
        out.extend_from_slice(head);
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        for s in &self.strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }
}

/// Whether `text` is how a hash's 32 bytes are written: 64 lower-case hex
/// digits.
fn is_hash_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads a packed form back, bounded and canonical: a damaged or
/// non-canonical one is an error, never a panic.
#[derive(Debug)]
pub struct Unpacker<'a> {
    strings: Vec<&'a str>,
    /// How many strings have been used so far: the next new one must be
    /// this number.
    used: usize,
    rest: &'a [u8],
}

impl<'a> Unpacker<'a> {
    /// Reads the string table of `bytes`, which begin with `head`.
    pub fn open(head: &[u8], bytes: &'a [u8]) -> Result<Self, PackError> {
        let mut u = Unpacker {
            strings: Vec::new(),
            used: 0,
            rest: bytes,
        };
        if u.take(head.len())? != head {
            return Err(PackError("an unknown version"));
        }
        let count = u.u32()? as usize;
        // Each string takes at least its length's four bytes.
        if count > u.rest.len() / 4 {
            return Err(PackError("more strings than bytes"));
        }
        u.strings.reserve(count);
        let mut seen = HashSet::with_capacity_and_hasher(count, Default::default());
        for _ in 0..count {
            let len = u.u32()? as usize;
            let s = std::str::from_utf8(u.take(len)?).map_err(|_| PackError("not UTF-8"))?;
            if !seen.insert(s) {
                return Err(PackError("a string twice in the table"));
            }
            u.strings.push(s);
        }
        Ok(u)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PackError> {
        if self.rest.len() < n {
            return Err(PackError("cut short"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], PackError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    /// A u32.
    pub fn u32(&mut self) -> Result<u32, PackError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A u64.
    pub fn u64(&mut self) -> Result<u64, PackError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u64 or none.
    pub fn opt_u64(&mut self) -> Result<Option<u64>, PackError> {
        let some = self.flag()?;
        let n = self.u64()?;
        if !some && n != 0 {
            return Err(PackError("a number written for none"));
        }
        Ok(some.then_some(n))
    }

    /// A u128.
    pub fn u128(&mut self) -> Result<u128, PackError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A flag.
    pub fn flag(&mut self) -> Result<bool, PackError> {
        match self.array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PackError("a flag neither 0 nor 1")),
        }
    }

    /// A string, or none.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, PackError> {
        let n = self.u32()?;
        if n == NONE {
            return Ok(None);
        }
        let n = n as usize;
        if n > self.used {
            return Err(PackError(
                "a string used before the strings numbered below it",
            ));
        }
        if n == self.used {
            self.used += 1;
        }
        self.strings
            .get(n)
            .map(|s| Some(*s))
            .ok_or(PackError("a string's number out of range"))
    }

    /// A string.
    pub fn str(&mut self) -> Result<&'a str, PackError> {
        self.opt_str()?
            .ok_or(PackError("a required string missing"))
    }

    /// A hash written as text (see [`Packer::hash_text`]).
    pub fn hash_text(&mut self) -> Result<String, PackError> {
        if self.flag()? {
            let s = self.str()?;
            if is_hash_hex(s) {
                return Err(PackError("a hash written as text"));
            }
            Ok(s.to_string())
        } else {
            Ok(Hash(self.array()?).to_hex())
        }
    }

    /// Checks a hash written as text, and skips it.
    pub fn skip_hash_text(&mut self) -> Result<(), PackError> {
        if self.flag()? {
            if is_hash_hex(self.str()?) {
                return Err(PackError("a hash written as text"));
            }
        } else {
            self.take(32)?;
        }
        Ok(())
    }

    /// A count of items each at least `min` bytes long.
    pub fn count(&mut self, min: usize) -> Result<usize, PackError> {
        let n = self.u32()? as usize;
        if n > self.rest.len() / min.max(1) {
            return Err(PackError("more items than bytes"));
        }
        Ok(n)
    }

    /// Checks that everything was read and every string used.
    pub fn end(&self) -> Result<(), PackError> {
        if !self.rest.is_empty() {
            return Err(PackError("bytes after the end"));
        }
        if self.used != self.strings.len() {
            return Err(PackError("a string in the table that is never used"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(strings: &[Option<&'a str>], hashes: &[&'a str]) -> Vec<u8> {
        let mut p = Packer::new(64);
        for s in strings {
            p.str(*s);
        }
        for h in hashes {
            p.hash_text(h);
        }
        p.opt_u64(Some(7));
        p.opt_u64(None);
        p.finish(b"T")
    }

    fn read(bytes: &[u8], strings: usize, hashes: usize) -> Result<Vec<String>, PackError> {
        let mut u = Unpacker::open(b"T", bytes)?;
        let mut out = Vec::new();
        for _ in 0..strings {
            out.push(u.opt_str()?.unwrap_or("-").to_string());
        }
        for _ in 0..hashes {
            out.push(u.hash_text()?);
        }
        assert_eq!(u.opt_u64()?, Some(7));
        assert_eq!(u.opt_u64()?, None);
        u.end()?;
        Ok(out)
    }

    #[test]
    fn what_is_packed_reads_back() {
        let h = Hash([0xab; 32]).to_hex();
        let strings = [Some("a"), None, Some("b"), Some("a"), Some("")];
        let bytes = sample(&strings, &[&h, "not a hash", &h.to_uppercase()]);
        let back = read(&bytes, 5, 3).unwrap();
        assert_eq!(
            back,
            ["a", "-", "b", "a", "", &h, "not a hash", &h.to_uppercase()]
        );
    }

    #[test]
    fn only_the_canonical_form_reads() {
        let bytes = sample(&[Some("a"), Some("b")], &[]);
        assert!(read(&bytes, 2, 0).is_ok());
        // Strings numbered out of their first use: "b" named before "a".
        let mut swapped = bytes.clone();
        let body = 4 + 1 + 4 + 1 + 4 + 1 + 1;
        swapped[body..body + 4].copy_from_slice(&1u32.to_le_bytes());
        swapped[body + 4..body + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            read(&swapped, 2, 0).unwrap_err().0,
            "a string used before the strings numbered below it"
        );
        // A string never used: "a" in the table, none in the body.
        let mut unused = vec![b'T'];
        unused.extend_from_slice(&1u32.to_le_bytes());
        unused.extend_from_slice(&1u32.to_le_bytes());
        unused.push(b'a');
        unused.extend_from_slice(&NONE.to_le_bytes());
        let mut u = Unpacker::open(b"T", &unused).unwrap();
        assert_eq!(u.opt_str().unwrap(), None);
        assert_eq!(
            u.end().unwrap_err().0,
            "a string in the table that is never used"
        );
        // The same string twice in the table.
        let mut twice = vec![b'T'];
        twice.extend_from_slice(&2u32.to_le_bytes());
        for _ in 0..2 {
            twice.extend_from_slice(&1u32.to_le_bytes());
            twice.push(b'x');
        }
        assert!(Unpacker::open(b"T", &twice).is_err());
        // A hash written as text, and a number written for none.
        let h = Hash([1; 32]).to_hex();
        let mut p = Packer::new(8);
        p.flag(true);
        p.str(Some(&h));
        let as_text = p.finish(b"T");
        let mut u = Unpacker::open(b"T", &as_text).unwrap();
        assert_eq!(u.hash_text().unwrap_err().0, "a hash written as text");
        let mut p = Packer::new(8);
        p.flag(false);
        p.u64(3);
        let none = p.finish(b"T");
        let mut u = Unpacker::open(b"T", &none).unwrap();
        assert!(u.opt_u64().is_err());
    }

    #[test]
    fn a_damaged_form_is_an_error_not_a_panic() {
        let h = Hash([3; 32]).to_hex();
        let bytes = sample(&[Some("token"), Some("wallet")], &[&h]);
        for cut in 0..bytes.len() {
            assert!(read(&bytes[..cut], 2, 1).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read(&longer, 2, 1).is_err());
        let mut huge = vec![b'T'];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Unpacker::open(b"T", &huge).is_err());
        // A count of more items than the bytes left could hold.
        let mut p = Packer::new(8);
        p.u32(1_000);
        p.u64(0);
        let counted = p.finish(b"T");
        let mut u = Unpacker::open(b"T", &counted).unwrap();
        assert_eq!(u.count(4).unwrap_err().0, "more items than bytes");
    }
}
