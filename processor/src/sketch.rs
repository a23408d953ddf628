//! Unique visitors: a HyperLogLog sketch of 2^14 registers (standard error
//! 0.81%) over 64-bit visitor hashes, estimated with Ertl's improved raw
//! estimator ("New cardinality estimation algorithms for HyperLogLog
//! sketches", 2017), which needs no bias tables and holds across the whole
//! range. Registers merge by maximum, so adding a visitor twice, replaying
//! a record or merging a sketch into itself changes nothing, and the sketch
//! of a range is the merge of its days': a true distinct count over the
//! range, not a sum.
//!
//! While it holds few visitors the sketch keeps HyperLogLog++'s fine
//! sparse form: 2^25 registers, where two of a few thousand visitors share
//! one so rarely that linear counting is all but exact (10 visitors are
//! 10, not 9 when two of them fall into one of 2^14 registers). Past
//! [`FINE_MAX`] it turns into the 2^14 registers — exactly the sketch the
//! same visitors would have made there — stored sparse (3 bytes per
//! register set) until that passes the dense form (one byte per register,
//! 16 KiB). A link with a few hundred visitors a day keeps 4 bytes each.

use std::collections::BTreeMap;

/// Index bits.
const P: u32 = 14;
/// Registers.
const M: usize = 1 << P;
/// The largest register value: leading zeros of the 50 remaining bits, + 1.
const Q: u8 = (64 - P) as u8;

/// Index bits of the fine form (HyperLogLog++'s p').
const FINE_P: u32 = 25;
/// The largest fine register value.
const FINE_Q: u8 = (64 - FINE_P) as u8;
/// Fine registers kept before the sketch turns coarse: 4 bytes each, so
/// the fine form never outgrows the dense one.
pub const FINE_MAX: usize = M / 4;

/// Encoding tags.
const SPARSE: u8 = 1;
const DENSE: u8 = 2;
const FINE: u8 = 3;

/// Why stored bytes are not a sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a visitor sketch: {0}")]
pub struct SketchError(&'static str);

/// A mergeable distinct-count sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch {
    registers: Registers,
}

/// Register index to value; only registers above zero.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registers {
    /// 2^25 registers: few visitors.
    Fine(BTreeMap<u32, u8>),
    /// 2^14 registers.
    Coarse(BTreeMap<u16, u8>),
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            registers: Registers::Fine(BTreeMap::new()),
        }
    }
}

/// Raises the register at `index` to `value`.
fn raise<K: Ord>(registers: &mut BTreeMap<K, u8>, index: K, value: u8) {
    let register = registers.entry(index).or_insert(0);
    *register = (*register).max(value);
}

/// A fine register as the coarse register its visitors would have set: the
/// top 14 of its 25 index bits, and a rank counted from bit 14 of the hash
/// (the 11 dropped index bits first, then the fine rank).
fn coarse(index: u32, value: u8) -> (u16, u8) {
    let dropped = index & ((1 << (FINE_P - P)) - 1);
    let rank = if dropped == 0 {
        (FINE_P - P) as u8 + value
    } else {
        (dropped.leading_zeros() - (32 - (FINE_P - P))) as u8 + 1
    };
    ((index >> (FINE_P - P)) as u16, rank)
}

impl Sketch {
    /// Adds a visitor by its 64-bit hash.
    pub fn insert(&mut self, hash: u64) {
        match &mut self.registers {
            Registers::Fine(fine) => {
                let rest = hash << FINE_P;
                let rank = (rest.leading_zeros().min(u32::from(FINE_Q)) + 1) as u8;
                raise(fine, (hash >> (64 - FINE_P)) as u32, rank);
                self.coarsen_when_full();
            }
            Registers::Coarse(registers) => {
                // Leading zeros of the remaining 50 bits, + 1, at most Q + 1.
                let rest = hash << P;
                let rank = (rest.leading_zeros().min(u32::from(Q)) + 1) as u8;
                raise(registers, (hash >> (64 - P)) as u16, rank);
            }
        }
    }

    /// Takes in every visitor of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        match (&mut self.registers, &other.registers) {
            (Registers::Fine(fine), Registers::Fine(theirs)) => {
                for (index, value) in theirs {
                    raise(fine, *index, *value);
                }
                self.coarsen_when_full();
            }
            (Registers::Coarse(registers), Registers::Fine(theirs)) => {
                for (index, value) in theirs {
                    let (index, value) = coarse(*index, *value);
                    raise(registers, index, value);
                }
            }
            (_, Registers::Coarse(theirs)) => {
                self.coarsen();
                if let Registers::Coarse(registers) = &mut self.registers {
                    for (index, value) in theirs {
                        raise(registers, *index, *value);
                    }
                }
            }
        }
    }

    fn coarsen_when_full(&mut self) {
        if matches!(&self.registers, Registers::Fine(fine) if fine.len() > FINE_MAX) {
            self.coarsen();
        }
    }

    /// Turns coarse, if fine.
    fn coarsen(&mut self) {
        if let Registers::Fine(fine) = &self.registers {
            let mut registers = BTreeMap::new();
            for (index, value) in fine {
                let (index, value) = coarse(*index, *value);
                raise(&mut registers, index, value);
            }
            self.registers = Registers::Coarse(registers);
        }
    }

    /// Whether no visitor was added.
    pub fn is_empty(&self) -> bool {
        match &self.registers {
            Registers::Fine(fine) => fine.is_empty(),
            Registers::Coarse(registers) => registers.is_empty(),
        }
    }

    /// The estimated number of distinct visitors.
    pub fn estimate(&self) -> u64 {
        let registers = match &self.registers {
            Registers::Fine(fine) => {
                // Linear counting over 2^25 registers.
                let m = f64::from(1_u32 << FINE_P);
                let empty = m - fine.len() as f64;
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a count"
                )]
                let estimate = (m * (m / empty).ln()).round() as u64;
                return estimate;
            }
            Registers::Coarse(registers) => registers,
        };
        if registers.is_empty() {
            return 0;
        }
        // counts[k]: registers holding k.
        let mut counts = [0_u32; Q as usize + 2];
        counts[0] = (M - registers.len()) as u32;
        for value in registers.values() {
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

    /// The stored form: fine while few; then sparse while smaller, else
    /// dense.
    pub fn to_bytes(&self) -> Vec<u8> {
        let registers = match &self.registers {
            Registers::Fine(fine) => {
                let mut bytes = Vec::with_capacity(1 + fine.len() * 4);
                bytes.push(FINE);
                for (index, value) in fine {
                    bytes.extend_from_slice(&(index << 6 | u32::from(*value)).to_be_bytes());
                }
                return bytes;
            }
            Registers::Coarse(registers) => registers,
        };
        if registers.len() * 3 < M {
            let mut bytes = Vec::with_capacity(1 + registers.len() * 3);
            bytes.push(SPARSE);
            for (index, value) in registers {
                bytes.extend_from_slice(&index.to_be_bytes());
                bytes.push(*value);
            }
            bytes
        } else {
            let mut bytes = vec![0; 1 + M];
            bytes[0] = DENSE;
            for (index, value) in registers {
                bytes[1 + usize::from(*index)] = *value;
            }
            bytes
        }
    }

    /// A sketch from its stored form (every form ever stored).
    ///
    /// # Errors
    ///
    /// [`SketchError`] if the bytes are not one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let valid = |value: u8| value <= Q + 1;
        let mut registers = BTreeMap::new();
        match bytes.split_first() {
            None => return Ok(Self::default()),
            Some((&FINE, rest)) => {
                if rest.len() % 4 != 0 {
                    return Err(SketchError("a fine entry is cut short"));
                }
                let mut fine = BTreeMap::new();
                for entry in rest.chunks_exact(4) {
                    let word = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
                    let (index, value) = (word >> 6, (word & 0x3f) as u8);
                    if index >= 1 << FINE_P || value == 0 || value > FINE_Q + 1 {
                        return Err(SketchError("a fine entry is out of range"));
                    }
                    raise(&mut fine, index, value);
                }
                let mut sketch = Self {
                    registers: Registers::Fine(fine),
                };
                sketch.coarsen_when_full();
                return Ok(sketch);
            }
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
        Ok(Self {
            registers: Registers::Coarse(registers),
        })
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

/// A visitor's hash: SHA-256 of the secret key, the user agent and the
/// address (each length-prefixed), first 8 bytes. Without the key nobody
/// can tell from a sketch whether an address visited; a new key makes
/// every visitor new.
pub fn visitor_hash(key: &[u8], ip: &str, user_agent: &str) -> u64 {
    VisitorPrefix::new(key, user_agent).hash(ip)
}

/// The hashing state after the key and the user agent: kept per user
/// agent, so a click hashes only its address (one SHA-256 block instead
/// of three for a browser's agent).
#[derive(Debug, Clone)]
pub struct VisitorPrefix(sha2::Sha256);

impl VisitorPrefix {
    /// The state after `key` and `user_agent`.
    pub fn new(key: &[u8], user_agent: &str) -> Self {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for part in [key, user_agent.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hasher)
    }

    /// The visitor hash of this agent at `ip`.
    pub fn hash(&self, ip: &str) -> u64 {
        use sha2::Digest;
        let mut hasher = self.0.clone();
        hasher.update((ip.len() as u64).to_be_bytes());
        hasher.update(ip.as_bytes());
        let digest = hasher.finalize();
        let mut first = [0_u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
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
        let fine = sketch.to_bytes();
        assert_eq!((fine[0], fine.len()), (FINE, 1 + 300 * 4));
        assert_eq!(Sketch::from_bytes(&fine), Ok(sketch.clone()));
        for hash in hashes(0..5_000) {
            sketch.insert(hash);
        }
        let sparse = sketch.to_bytes();
        assert_eq!(sparse[0], SPARSE, "coarse past {FINE_MAX} visitors");
        assert!(
            sparse.len() < 1 + M,
            "{} bytes for 5,000 visitors",
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
            &[FINE, 0, 0, 0],
            &[FINE, 0xff, 0xff, 0xff, 0xc1],
            &[FINE, 0, 0, 0, 0],
        ] {
            assert!(Sketch::from_bytes(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn few_visitors_are_counted_all_but_exactly() {
        let mut sketch = Sketch::default();
        for (n, hash) in hashes(0..FINE_MAX as u64).enumerate() {
            sketch.insert(hash);
            let (estimate, distinct) = (sketch.estimate(), n as u64 + 1);
            if distinct <= 1_000 {
                assert_eq!(estimate, distinct);
            } else {
                assert!(
                    estimate.abs_diff(distinct) * 1_000 <= distinct,
                    "{distinct}: {estimate}"
                );
            }
        }
    }

    #[test]
    fn turning_coarse_gives_the_sketch_the_coarse_registers_would_have_made() {
        let coarse_from_start = || Sketch {
            registers: Registers::Coarse(BTreeMap::new()),
        };
        let (mut fine, mut coarse) = (Sketch::default(), coarse_from_start());
        for hash in hashes(0..(FINE_MAX as u64 + 500)).chain([0, u64::MAX, 1 << 39, 1 << 38]) {
            fine.insert(hash);
            coarse.insert(hash);
        }
        assert!(matches!(fine.registers, Registers::Coarse(_)));
        assert_eq!(fine, coarse);
        // A fine sketch merged into a coarse one, and the other way round.
        let (mut small, mut into_coarse) = (Sketch::default(), coarse_from_start());
        let mut direct = coarse_from_start();
        for hash in hashes(50_000..50_300).chain([0, 1 << 39]) {
            small.insert(hash);
            direct.insert(hash);
        }
        into_coarse.merge(&small);
        assert_eq!(into_coarse, direct);
        let mut fine_first = small.clone();
        fine_first.merge(&coarse_from_start());
        assert_eq!(fine_first, direct);
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
        let prefix = VisitorPrefix::new(b"k", "ua");
        assert_eq!(prefix.hash("1.2.3.4"), visitor_hash(b"k", "1.2.3.4", "ua"));
        assert_eq!(
            prefix.hash("1.2.3.4"),
            prefix.hash("1.2.3.4"),
            "the prefix is kept"
        );
        assert_ne!(prefix.hash("1.2.3.4"), prefix.hash("1.2.3.5"));
    }
}
