//! [`Names`]: each distinct value kept once, rows hold a 4-byte number for it.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;

/// Values (endpoint ids, owners, event types) that many rows repeat, each kept once and
/// named by a number. A value stays for the life of the store: the log keeps naming it.
#[derive(Debug)]
pub(super) struct Names<T> {
    values: Vec<T>,
    numbers: HashMap<T, NonZeroU32>,
}

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names {
            values: Vec::new(),
            numbers: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Names<T> {
    /// The number of `value`, given one if it has none yet.
    pub(super) fn number(&mut self, value: &T) -> NonZeroU32 {
        if let Some(number) = self.numbers.get(value) {
            return *number;
        }
        // More than 4 billion distinct values would not fit in this process's memory first.
        let number = u32::try_from(self.values.len() + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MAX);
        self.values.push(value.clone());
        self.numbers.insert(value.clone(), number);
        number
    }

    /// The number of `value`, if any row has named it.
    pub(super) fn find(&self, value: &T) -> Option<NonZeroU32> {
        self.numbers.get(value).copied()
    }

    /// The value numbered `number` (by [`number`](Self::number) of this table).
    pub(super) fn value(&self, number: NonZeroU32) -> &T {
        // Numbers come only from `number`, which pushed the value first.
        &self.values[number.get() as usize - 1]
    }
}
