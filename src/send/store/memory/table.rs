//! [`Table`]: records in the order they were added, found by that sequence or by their id.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// A record a [`Table`] finds by its id.
pub(super) trait Keyed {
    /// The record's id, as text.
    fn key(&self) -> &str;
}

/// Records numbered 1, 2, 3, … in the order they were added, held in chunks of
/// [`CHUNK`] so that growth never copies the whole table and spare room is at most
/// one chunk. An index by id holds only the low 32 bits of each record's number (4 bytes at
/// a hash table's load factor, where a map from id to record would hold the id twice and the
/// record itself at that factor): the records held at once span fewer than 2^32 numbers, so
/// the low bits name one of them. A removed record leaves a hole until every record before
/// it is gone too.
pub(super) struct Table<T> {
    chunks: VecDeque<Vec<Option<T>>>,
    /// The number of the first record of the first chunk.
    base: u64,
    /// The number the next record gets.
    next: u64,
    by_key: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            chunks: VecDeque::new(),
            base: 1,
            next: 1,
            by_key: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("records", &self.by_key.len())
            .field("first", &self.base)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Records per chunk.
const CHUNK: usize = 1024;

impl<T: Keyed> Table<T> {
    /// Adds a record under the next number, which it returns. The caller keeps ids unique.
    pub(super) fn push(&mut self, record: T) -> u64 {
        let seq = self.next;
        self.next += 1;
        let hash = self.hasher.hash_one(record.key());
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(Some(record)),
            // A new chunk grows as a `Vec` does, up to exactly `CHUNK` (a power of two): a
            // small store stays small.
            _ => self.chunks.push_back(vec![Some(record)]),
        }
        let (chunks, base, next, hasher) = (&self.chunks, self.base, self.next, &self.hasher);
        self.by_key.insert_unique(hash, low_bits(seq), |low| {
            hasher.hash_one(slot(chunks, base, widen(next, *low)).map_or("", Keyed::key))
        });
        seq
    }

    pub(super) fn get(&self, seq: u64) -> Option<&T> {
        slot(&self.chunks, self.base, seq)
    }

    pub(super) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let (chunk, at) = position(self.base, seq)?;
        self.chunks.get_mut(chunk)?.get_mut(at)?.as_mut()
    }

    /// The number of the record with id `key`.
    pub(super) fn seq_of(&self, key: &str) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        self.by_key
            .find(hash, |low| {
                self.get(widen(self.next, *low))
                    .is_some_and(|r| r.key() == key)
            })
            .map(|low| widen(self.next, *low))
    }

    /// The record with id `key`, with its number.
    pub(super) fn find(&self, key: &str) -> Option<(u64, &T)> {
        let seq = self.seq_of(key)?;
        Some((seq, self.get(seq)?))
    }

    pub(super) fn find_mut(&mut self, key: &str) -> Option<(u64, &mut T)> {
        let seq = self.seq_of(key)?;
        Some((seq, self.get_mut(seq)?))
    }

    /// Takes record `seq` out, leaving a hole; chunks of holes at the front are freed.
    pub(super) fn remove(&mut self, seq: u64) -> Option<T> {
        let key_hash = self.hasher.hash_one(self.get(seq)?.key());
        if let Ok(entry) = self
            .by_key
            .find_entry(key_hash, |low| *low == low_bits(seq))
        {
            entry.remove();
        }
        let (chunk, at) = position(self.base, seq)?;
        let record = self.chunks.get_mut(chunk)?.get_mut(at)?.take();
        while self
            .chunks
            .front()
            .is_some_and(|c| c.len() == CHUNK && c.iter().all(Option::is_none))
        {
            self.chunks.pop_front();
            self.base += CHUNK as u64;
        }
        record
    }

    /// Records numbered after `after` (all of them with `None`), oldest first.
    pub(super) fn after(&self, after: Option<u64>) -> impl Iterator<Item = (u64, &T)> {
        let start = after.map_or(self.base, |a| a.saturating_add(1).max(self.base));
        (start..self.next).filter_map(move |seq| Some((seq, self.get(seq)?)))
    }

    /// Records numbered before `before` (all of them with `None`), newest first.
    pub(super) fn before(&self, before: Option<u64>) -> impl Iterator<Item = (u64, &T)> {
        let end = before.map_or(self.next, |b| b.min(self.next));
        (self.base..end)
            .rev()
            .filter_map(move |seq| Some((seq, self.get(seq)?)))
    }

    /// Every record, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.after(None)
    }
}

fn low_bits(seq: u64) -> u32 {
    seq as u32
}

/// The number whose low 32 bits are `low`, among the 2^32 numbers before `next`.
fn widen(next: u64, low: u32) -> u64 {
    next.wrapping_sub(u64::from(low_bits(next).wrapping_sub(low)))
}

/// Chunk and place of record `seq` in a table whose first chunk starts at `base`.
fn position(base: u64, seq: u64) -> Option<(usize, usize)> {
    let offset = usize::try_from(seq.checked_sub(base)?).ok()?;
    Some((offset / CHUNK, offset % CHUNK))
}

fn slot<T>(chunks: &VecDeque<Vec<Option<T>>>, base: u64, seq: u64) -> Option<&T> {
    let (chunk, at) = position(base, seq)?;
    chunks.get(chunk)?.get(at)?.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Named(String);

    impl Keyed for Named {
        fn key(&self) -> &str {
            &self.0
        }
    }

    #[test]
    fn records_are_found_by_number_and_id_and_walked_both_ways() {
        let mut table = Table::default();
        for i in 0..3000 {
            assert_eq!(table.push(Named(format!("r{i}"))), i + 1);
        }
        assert_eq!(table.get(1), Some(&Named("r0".into())));
        assert_eq!(table.find("r2999").map(|(seq, _)| seq), Some(3000));
        assert_eq!(table.get(3001), None);
        assert_eq!(table.get(0), None);
        assert_eq!(table.remove(2), Some(Named("r1".into())));
        assert_eq!(table.find("r1"), None);
        assert_eq!(table.remove(2), None);
        let after: Vec<u64> = table.after(Some(0)).take(3).map(|(s, _)| s).collect();
        assert_eq!(after, [1, 3, 4]);
        let before: Vec<u64> = table.before(Some(4)).map(|(s, _)| s).collect();
        assert_eq!(before, [3, 1]);
        assert_eq!(table.before(None).next().map(|(s, _)| s), Some(3000));
        // Emptying the first chunk frees it; numbers and ids still find the rest.
        for seq in 1..=1024 {
            table.remove(seq);
        }
        assert_eq!(table.chunks.len(), 2);
        assert_eq!(table.get(1025), Some(&Named("r1024".into())));
        assert_eq!(table.seq_of("r2000"), Some(2001));
        assert_eq!(table.iter().count(), 3000 - 1024);
        assert_eq!(table.push(Named("new".into())), 3001);
        assert_eq!(table.find("new").map(|(s, _)| s), Some(3001));
    }

    #[test]
    fn low_bits_name_a_number_across_the_32_bit_boundary() {
        let next = (1u64 << 32) + 5;
        for seq in [next - 1, 1u64 << 32, (1u64 << 32) - 1, next - (1 << 31)] {
            assert_eq!(widen(next, low_bits(seq)), seq);
        }
        assert_eq!(widen(7, low_bits(3)), 3);
    }
}
