//! The mount's inode numbers and what the kernel holds of them. A number is derived from
//! what the inode is (its key), so a directory listing can report it without remembering
//! anything, and the same thing gets the same number again after the kernel forgot it.
//! Only the inodes the kernel holds are kept: each is counted up by every lookup reply
//! (and readdirplus entry) and counted down by `forget`, and dropped at zero. A number
//! whose derived value is taken by something else comes from an overflow range instead.
//! Every inode made gets a new generation, so a number reused for something new is never
//! mistaken for what it was.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// What an inode is: the key it was made for.
pub(super) trait Identity {
    type Key: Hash;
    fn is(&self, key: &Self::Key) -> bool;
}

/// The numbers keys derive to: `first ..` below `OVERFLOW`; overflow numbers above it.
const OVERFLOW: u64 = 1 << 62;

struct Slot<V> {
    value: V,
    lookups: u64,
    generation: u64,
    /// The derived number, when this one is an overflow number (else 0, which no
    /// number is).
    home: u64,
}

pub(super) struct InodeTable<V: Identity> {
    slots: HashMap<u64, Slot<V>>,
    /// Derived numbers that were taken, and the overflow numbers their keys got.
    overflow: HashMap<u64, Vec<u64>>,
    first: u64,
    next_overflow: u64,
    next_generation: u64,
}

impl<V: Identity> InodeTable<V> {
    /// A table whose numbers start at `first` (those below are the caller's fixed ones).
    pub fn new(first: u64) -> Self {
        assert!(first > 0, "0 is no inode number");
        InodeTable {
            slots: HashMap::new(),
            overflow: HashMap::new(),
            first,
            next_overflow: OVERFLOW,
            next_generation: 1,
        }
    }

    fn derive(&self, key: &V::Key) -> u64 {
        // SipHash with fixed keys: the same key gives the same number in every mount.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.first + h.finish() % (OVERFLOW - self.first)
    }

    /// The number `key` has now, if the table holds it.
    pub fn find(&self, key: &V::Key) -> Option<u64> {
        let home = self.derive(key);
        if self.slots.get(&home).is_some_and(|s| s.value.is(key)) {
            return Some(home);
        }
        self.overflow
            .get(&home)?
            .iter()
            .copied()
            .find(|n| self.slots.get(n).is_some_and(|s| s.value.is(key)))
    }

    /// The number `key` has, or most likely gets (what a plain listing reports).
    pub fn number(&self, key: &V::Key) -> u64 {
        self.find(key).unwrap_or_else(|| self.derive(key))
    }

    pub fn get(&self, ino: u64) -> Option<&V> {
        self.slots.get(&ino).map(|s| &s.value)
    }

    pub fn generation(&self, ino: u64) -> u64 {
        self.slots.get(&ino).map_or(0, |s| s.generation)
    }

    /// Counts one more kernel reference to `key`, making its inode with `make` first if
    /// the table does not hold it. Returns its number and generation.
    pub fn intern(&mut self, key: &V::Key, make: impl FnOnce() -> V) -> (u64, u64) {
        if let Some(ino) = self.find(key) {
            if let Some(s) = self.slots.get_mut(&ino) {
                s.lookups += 1;
                return (ino, s.generation);
            }
        }
        let home = self.derive(key);
        let (ino, overflowed) = if self.slots.contains_key(&home) {
            let n = self.next_overflow;
            self.next_overflow += 1;
            self.overflow.entry(home).or_default().push(n);
            (n, home)
        } else {
            (home, 0)
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        self.slots.insert(
            ino,
            Slot {
                value: make(),
                lookups: 1,
                generation,
                home: overflowed,
            },
        );
        (ino, generation)
    }

    /// The kernel dropped `n` references to `ino`; at none the inode goes. Returns whether
    /// it went.
    pub fn forget(&mut self, ino: u64, n: u64) -> bool {
        let Some(slot) = self.slots.get_mut(&ino) else {
            return false;
        };
        if slot.lookups > n {
            slot.lookups -= n;
            return false;
        }
        if slot.home != 0 {
            let home = slot.home;
            if let Some(list) = self.overflow.get_mut(&home) {
                list.retain(|x| *x != ino);
                if list.is_empty() {
                    self.overflow.remove(&home);
                }
            }
        }
        self.slots.remove(&ino);
        // Give the memory back once the kernel let go of most of what it held.
        if self.slots.capacity() > 1024 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        true
    }

    /// How many inodes the table holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The kernel references held on `ino` (0 when not held).
    #[cfg(test)]
    pub fn lookups(&self, ino: u64) -> u64 {
        self.slots.get(&ino).map_or(0, |s| s.lookups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Thing(u32);

    impl Identity for Thing {
        type Key = u32;
        fn is(&self, key: &u32) -> bool {
            self.0 == *key
        }
    }

    /// A table whose keys all derive to one number: every key but the first overflows.
    struct Clash(u32);
    impl Identity for Clash {
        type Key = Colliding;
        fn is(&self, key: &Colliding) -> bool {
            self.0 == key.0
        }
    }
    struct Colliding(u32);
    impl Hash for Colliding {
        fn hash<H: Hasher>(&self, h: &mut H) {
            0u8.hash(h);
        }
    }

    #[test]
    fn lookups_count_up_and_forget_counts_down() {
        let mut t = InodeTable::new(100);
        let (a, _) = t.intern(&7, || Thing(7));
        assert!((100..OVERFLOW).contains(&a));
        assert_eq!(
            t.intern(&7, || Thing(99)).0,
            a,
            "a held key keeps its inode"
        );
        assert_eq!(t.get(a), Some(&Thing(7)));
        assert_eq!(t.lookups(a), 2);
        assert!(!t.forget(a, 1));
        assert_eq!(t.lookups(a), 1);
        assert!(t.forget(a, 1));
        assert_eq!(t.get(a), None);
        assert_eq!(t.len(), 0);
        assert!(!t.forget(a, 1), "forgetting what is gone changes nothing");
    }

    #[test]
    fn numbers_are_derived_and_reused_with_a_new_generation() {
        let mut t = InodeTable::new(100);
        let before = t.number(&42);
        let (a, gen_a) = t.intern(&42, || Thing(42));
        assert_eq!(a, before, "a listing reports the number a lookup gives");
        assert_eq!(t.generation(a), gen_a);
        t.forget(a, 1);
        let (b, gen_b) = t.intern(&42, || Thing(42));
        assert_eq!(b, a, "the same key gets the same number back");
        assert!(gen_b > gen_a, "but as a new inode: {gen_b} after {gen_a}");
        assert_eq!(
            InodeTable::<Thing>::new(100).number(&42),
            a,
            "and in another table (mount) too"
        );
    }

    #[test]
    fn colliding_keys_get_overflow_numbers_that_survive_the_first_going() {
        let mut t = InodeTable::new(100);
        let (a, _) = t.intern(&Colliding(1), || Clash(1));
        let (b, _) = t.intern(&Colliding(2), || Clash(2));
        let (c, _) = t.intern(&Colliding(3), || Clash(3));
        assert!(a < OVERFLOW && b >= OVERFLOW && c >= OVERFLOW && b != c);
        assert_eq!(t.find(&Colliding(2)), Some(b));
        // The first goes: the others keep their numbers, the first gets its own back.
        assert!(t.forget(a, 1));
        assert_eq!(t.intern(&Colliding(2), || Clash(0)).0, b);
        assert_eq!(t.find(&Colliding(3)), Some(c));
        let (a2, _) = t.intern(&Colliding(1), || Clash(1));
        assert_eq!(a2, a);
        assert!(t.forget(b, 2));
        assert_eq!(t.find(&Colliding(2)), None);
        assert!(t.forget(c, 1));
        assert!(t.forget(a2, 1));
        assert!(t.overflow.is_empty() && t.len() == 0);
    }

    #[test]
    fn many_inodes_come_and_go() {
        let mut t = InodeTable::new(100);
        let inos: Vec<u64> = (0..10_000).map(|k| t.intern(&k, || Thing(k)).0).collect();
        let mut sorted = inos.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), inos.len(), "distinct keys, distinct numbers");
        for (k, ino) in inos.iter().enumerate() {
            assert_eq!(t.get(*ino), Some(&Thing(k as u32)));
            assert!(t.forget(*ino, 1));
        }
        assert_eq!(t.len(), 0);
    }
}
