//! Unique visitors: a HyperLogLog sketch of 2^14 registers (standard error
//! 0.81%) over 64-bit visitor hashes, estimated with Ertl's improved raw
//! estimator ("New cardinality estimation algorithms for HyperLogLog
//! sketches", 2017), which needs no bias tables and holds across the whole
//! range. Registers merge by maximum, so adding a visitor twice, replaying
//! a record or merging a sketch into itself changes nothing, and the sketch
//! of a range is the merge of its days': a true distinct count over the
//! range, not a sum.
//!
//! Stored sparse (3 bytes per register set) until that passes the dense
//! form (one byte per register, 16 KiB), so a link with a few hundred
//! visitors a day keeps a few hundred bytes.

use std::collections::BTreeMap;

/// Index bits.
const P: u32 = 14;
/// Registers.
const M: usize = 1 << P;
/// The largest register value: leading zeros of the 50 remaining bits, + 1.
const Q: u8 = (64 - P) as u8;

/// Encoding tags.
const SPARSE: u8 = 1;
const DENSE: u8 = 2;

/// Why stored bytes are not a sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a visitor sketch: {0}")]
pub struct SketchError(&'static str);

/// A mergeable distinct-count sketch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sketch {
    /// Register index to value; only registers above zero.
    registers: BTreeMap<u16, u8>,
}

impl Sketch {
    /// Adds a visitor by its 64-bit hash.
    pub fn insert(&mut self, hash: u64) {
        let index = (hash >> (64 - P)) as u16;
        let rest = hash << P;
        // Leading zeros of the remaining 50 bits, + 1, at most Q + 1.
        let rank = (rest.leading_zeros().min(u32::from(Q)) + 1) as u8;
        let register = self.registers.entry(index).or_insert(0);
        *register = (*register).max(rank);
    }

    /// Takes in every visitor of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for (index, value) in &other.registers {
            let register = self.registers.entry(*index).or_insert(0);
            *register = (*register).max(*value);
        }
    }

    /// Whether no visitor was added.
    pub fn is_empty(&self) -> bool {
        self.registers.is_empty()
    }

    /// The estimated number of distinct visitors.
    pub fn estimate(&self) -> u64 {
        if self.registers.is_empty() {
            return 0;
        }
        // counts[k]: registers holding k.
        let mut counts = [0_u32; Q as usize + 2];
        counts[0] = (M - self.registers.len()) as u32;
        for value in self.registers.values() {
            counts[usize::from(*value)] += 1;
        }
        let m = M as f64;
        let q = usize::from(Q);
        let mut z = m * tau(1.0 - f64::from(counts[q + 1]) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(counts[k]));
        }
        z += m * sigma(f64::from(counts[0]) / m);
        let alpha = 1.0 / (2.0 * std::f64::consts::LN_2);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count"
        )]
        let estimate = (alpha * m * m / z).round() as u64;
        estimate
    }

    /// The stored form: sparse while smaller, else dense.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.registers.len() * 3 < M {
            let mut bytes = Vec::with_capacity(1 + self.registers.len() * 3);
            bytes.push(SPARSE);
            for (index, value) in &self.registers {
                bytes.extend_from_slice(&index.to_be_bytes());
                bytes.push(*value);
            }
            bytes
        } else {
            let mut bytes = vec![0; 1 + M];
            bytes[0] = DENSE;
            for (index, value) in &self.registers {
                bytes[1 + usize::from(*index)] = *value;
            }
            bytes
        }
    }

    /// A sketch from its stored form.
    ///
    /// # Errors
    ///
    /// [`SketchError`] if the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let valid = |value: u8| value <= Q + 1;
        let mut registers = BTreeMap::new();
        match bytes.split_first() {
            None => {}
            Some((&SPARSE, rest)) => {
                if rest.len() % 3 != 0 {
                    return Err(SketchError("a sparse entry is cut short"));
                }
                for entry in rest.chunks_exact(3) {
                    let index = u16::from_be_bytes([entry[0], entry[1]]);
                    if usize::from(index) >= M || !valid(entry[2]) {
                        return Err(SketchError("a sparse entry is out of range"));
                    }
                    if entry[2] > 0 {
                        registers.insert(index, entry[2]);
                    }
                }
            }
            Some((&DENSE, rest)) => {
                if rest.len() != M {
                    return Err(SketchError("a dense sketch has the wrong size"));
                }
                for (index, value) in rest.iter().enumerate() {
                    if !valid(*value) {
                        return Err(SketchError("a register is out of range"));
                    }
                    if *value > 0 {
                        registers.insert(index as u16, *value);
                    }
                }
            }
            Some(_) => return Err(SketchError("unknown encoding")),
        }
        Ok(Self { registers })
    }
}

/// Ertl's sigma: x + sum over k >= 1 of x^(2^k) * 2^(k-1).
fn sigma(x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let (mut x, mut y, mut z) = (x, 1.0, x);
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

/// Ertl's tau: (1 - x - sum over k >= 1 of (1 - x^(2^-k))^2 * 2^-k) / 3.
fn tau(x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut x, mut y, mut z) = (x, 1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

/// A visitor's hash: SHA-256 of the secret key, the address and the user
/// agent (each length-prefixed), first 8 bytes. Without the key nobody can
/// tell from a sketch whether an address visited; a new key makes every
/// visitor new.
pub fn visitor_hash(key: &[u8], ip: &str, user_agent: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [key, ip.as_bytes(), user_agent.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(range: std::ops::Range<u64>) -> impl Iterator<Item = u64> {
        range.map(|n| {
            visitor_hash(
                b"test-key",
                &format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
                "ua",
            )
        })
    }

    #[test]
    fn estimates_stay_within_two_percent_from_one_to_a_million() {
        for distinct in [
            1_u64, 10, 100, 1_000, 10_000, 40_000, 70_000, 100_000, 1_000_000,
        ] {
            let mut sketch = Sketch::default();
            for hash in hashes(0..distinct) {
                sketch.insert(hash);
            }
            let estimate = sketch.estimate() as f64;
            let error = (estimate - distinct as f64).abs() / distinct as f64;
            assert!(
                error <= 0.02,
                "{distinct}: estimated {estimate} ({:.2}%)",
                error * 100.0
            );
        }
    }

    #[test]
    fn merges_are_distinct_counts_and_repeats_change_nothing() {
        let (mut monday, mut tuesday) = (Sketch::default(), Sketch::default());
        for hash in hashes(0..30_000) {
            monday.insert(hash);
        }
        for hash in hashes(20_000..50_000) {
            tuesday.insert(hash);
        }
        let before = monday.clone();
        for hash in hashes(0..30_000) {
            monday.insert(hash);
        }
        assert_eq!(monday, before, "a visitor added twice is one");
        let mut both = monday.clone();
        both.merge(&tuesday);
        let mut again = both.clone();
        again.merge(&tuesday);
        assert_eq!(again, both, "merging twice is merging once");
        let estimate = both.estimate() as f64;
        assert!((estimate - 50_000.0).abs() / 50_000.0 <= 0.02, "{estimate}");
        assert!(estimate < (monday.estimate() + tuesday.estimate()) as f64 * 0.9);
    }

    #[test]
    fn stored_forms_round_trip_sparse_then_dense_and_garbage_is_refused() {
        let mut sketch = Sketch::default();
        assert_eq!(Sketch::from_bytes(&sketch.to_bytes()), Ok(sketch.clone()));
        for hash in hashes(0..300) {
            sketch.insert(hash);
        }
        let sparse = sketch.to_bytes();
        assert_eq!(sparse[0], SPARSE);
        assert!(
            sparse.len() < 1_000,
            "{} bytes for 300 visitors",
            sparse.len()
        );
        assert_eq!(Sketch::from_bytes(&sparse), Ok(sketch.clone()));
        for hash in hashes(0..100_000) {
            sketch.insert(hash);
        }
        let dense = sketch.to_bytes();
        assert_eq!((dense[0], dense.len()), (DENSE, 1 + M));
        assert_eq!(Sketch::from_bytes(&dense), Ok(sketch));
        for garbage in [
            &[9_u8][..],
            &[SPARSE, 0],
            &[SPARSE, 0xff, 0xff, 1],
            &[DENSE, 1],
        ] {
            assert!(Sketch::from_bytes(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn the_key_decides_the_hash() {
        assert_eq!(
            visitor_hash(b"k", "1.2.3.4", "ua"),
            visitor_hash(b"k", "1.2.3.4", "ua")
        );
        assert_ne!(
            visitor_hash(b"k", "1.2.3.4", "ua"),
            visitor_hash(b"k2", "1.2.3.4", "ua")
        );
        assert_ne!(
            visitor_hash(b"k", "1.2.3.4", "ua"),
            visitor_hash(b"k", "1.2.3.4", "ub")
        );
        assert_ne!(
            visitor_hash(b"k", "1.2.3.4a", ""),
            visitor_hash(b"k", "1.2.3.4", "a")
        );
    }
}
