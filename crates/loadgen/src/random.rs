//! A small seeded random number generator whose output never changes between releases.
//!
//! The generated files must be identical for the same seed on every machine and every
//! build. A library generator's stream may change with a new version, so the generator is
//! SplitMix64, written out here (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", OOPSLA 2014).

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    /// Creates the stream for one item (a customer) of the run seeded with `seed`, so every
    /// customer's data depends only on the seed and its own index.
    pub fn for_item(seed: u64, item: u64) -> Random {
        let mut mixer = Random {
            state: seed ^ item.wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        Random {
            state: mixer.next_u64(),
        }
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`; `bound` must be above 0. The modulo bias is below
    /// 2^-40 for the bounds used here, far too small to matter for a workload.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Returns true with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Picks an item of `table` with probability proportional to its weight.
    pub fn weighted<'a, T>(&mut self, table: &'a [(T, u32)]) -> &'a T {
        let total: u64 = table.iter().map(|(_, weight)| u64::from(*weight)).sum();
        let mut ticket = self.below(total.max(1));
        for (item, weight) in table {
            let weight = u64::from(*weight);
            if ticket < weight {
                return item;
            }
            ticket -= weight;
        }
        &table[table.len() - 1].0
    }

    /// Picks one item of `items` with equal probability.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.below(items.len() as u64) as usize;
        &items[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_stable_for_seed() {
        let mut random = Random::for_item(42, 7);

        let first = [random.next_u64(), random.next_u64()];

        let mut again = Random::for_item(42, 7);
        assert_eq!(first, [again.next_u64(), again.next_u64()]);
        assert_ne!(first[0], Random::for_item(42, 8).next_u64());
    }

    #[test]
    fn splitmix_matches_reference_output() {
        // The first output of SplitMix64 seeded with 0, as the reference code computes it.
        let mut random = Random { state: 0 };

        assert_eq!(random.next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn weighted_follows_weights() {
        let table = [("rare", 1), ("common", 9)];
        let mut random = Random::for_item(1, 1);

        let common = (0..10_000)
            .filter(|_| *random.weighted(&table) == "common")
            .count();

        assert!(
            (8_800..9_200).contains(&common),
            "common picked {common} times"
        );
    }

    #[test]
    fn weighted_never_picks_zero_weight() {
        let table = [("never", 0), ("always", 3)];
        let mut random = Random::for_item(5, 0);

        for _ in 0..1_000 {
            assert_eq!(*random.weighted(&table), "always");
        }
    }
}
