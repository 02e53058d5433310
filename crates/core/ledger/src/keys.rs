//! Borrowed keys for the state's tables: a lookup by `(token, wallet)` or
//! the first claim of `(did, topic)` compares against the stored keys
//! without building an owned key, so checking a transfer copies no
//! identifier. A transfer's checks make a dozen lookups; copying the
//! token's and identity's names for each cost more than the lookups.

use equivalent::{Comparable, Equivalent};
use std::cmp::Ordering;

/// The key `(a, b)`, borrowed.
pub(crate) struct Pair<'a, A, B>(pub &'a A, pub &'a B);

impl<A: Ord, B: Ord> Equivalent<(A, B)> for Pair<'_, A, B> {
    fn equivalent(&self, key: &(A, B)) -> bool {
        *self.0 == key.0 && *self.1 == key.1
    }
}

impl<A: Ord, B: Ord> Comparable<(A, B)> for Pair<'_, A, B> {
    fn compare(&self, key: &(A, B)) -> Ordering {
        self.0.cmp(&key.0).then_with(|| self.1.cmp(&key.1))
    }
}

/// Just before every key that starts with `a`: the start of a range over
/// them. It equals no key.
pub(crate) struct Before<'a, A>(pub &'a A);

impl<A: Ord, B> Equivalent<(A, B)> for Before<'_, A> {
    fn equivalent(&self, _: &(A, B)) -> bool {
        false
    }
}

impl<A: Ord, B> Comparable<(A, B)> for Before<'_, A> {
    fn compare(&self, key: &(A, B)) -> Ordering {
        self.0.cmp(&key.0).then(Ordering::Less)
    }
}

impl<A: Ord, B, C> Equivalent<(A, B, C)> for Before<'_, A> {
    fn equivalent(&self, _: &(A, B, C)) -> bool {
        false
    }
}

impl<A: Ord, B, C> Comparable<(A, B, C)> for Before<'_, A> {
    fn compare(&self, key: &(A, B, C)) -> Ordering {
        self.0.cmp(&key.0).then(Ordering::Less)
    }
}

/// Just before every key that starts with `(a, b)`: the start of a range
/// over them. It equals no key.
pub(crate) struct Before2<'a, A, B>(pub &'a A, pub &'a B);

impl<A: Ord, B: Ord, C> Equivalent<(A, B, C)> for Before2<'_, A, B> {
    fn equivalent(&self, _: &(A, B, C)) -> bool {
        false
    }
}

impl<A: Ord, B: Ord, C> Comparable<(A, B, C)> for Before2<'_, A, B> {
    fn compare(&self, key: &(A, B, C)) -> Ordering {
        self.0
            .cmp(&key.0)
            .then_with(|| self.1.cmp(&key.1))
            .then(Ordering::Less)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imbl::OrdMap;

    #[test]
    fn a_borrowed_pair_finds_what_the_owned_key_finds() {
        let map: OrdMap<(String, u8), u32> = (0..50u8)
            .map(|i| ((format!("t{}", i % 7), i), u32::from(i)))
            .collect();
        for t in 0..8 {
            let name = format!("t{t}");
            for i in 0..52u8 {
                assert_eq!(
                    map.get(&Pair(&name, &i)),
                    map.get(&(name.clone(), i)),
                    "{name} {i}"
                );
            }
        }
    }

    #[test]
    fn a_range_from_before_a_prefix_starts_at_its_first_key() {
        let map: OrdMap<(String, u8, u8), ()> =
            [("a", 1, 0), ("b", 1, 3), ("b", 1, 9), ("b", 2, 0)]
                .into_iter()
                .map(|(a, b, c)| ((a.to_string(), b, c), ()))
                .collect();
        let b = "b".to_string();
        let first = |k: Before2<'_, String, u8>| map.range(k..).next().map(|(k, ())| k.clone());
        assert_eq!(first(Before2(&b, &1)), Some((b.clone(), 1, 3)));
        assert_eq!(first(Before2(&b, &2)), Some((b.clone(), 2, 0)));
        assert_eq!(first(Before2(&b, &3)), None);
        let pairs: OrdMap<(String, u8), ()> = [("a", 5), ("b", 0), ("b", 7)]
            .into_iter()
            .map(|(a, b)| ((a.to_string(), b), ()))
            .collect();
        let from_b: Vec<_> = pairs.range(Before(&b)..).map(|(k, ())| k.1).collect();
        assert_eq!(from_b, vec![0, 7]);
        let a = "a".to_string();
        assert_eq!(pairs.range(Before(&a)..).count(), 3);
    }
}
