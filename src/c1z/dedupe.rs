//! [`SeenIndex`]: which objects the current sync already holds, kept in memory while a sync is written.
//!
//! **Owns:** a hash table from a key's hash to the rows that may hold that key (8 bytes a row: a 32-bit tag of
//! the key's hash and the row's offset from the first row of the sync).
//!
//! **Must not:** decide on a hash alone. A tag only names candidates; the caller confirms each candidate by
//! reading the row, so dedupe stays exact whatever the keys are. Keys are hashed with per-process random keys, so
//! ids chosen by a hostile server cannot pile up on one tag.
//!
//! Why in memory: the unique `(external_id, sync_id)` indexes are built in bulk at the end (see
//! `schema::DEFERRED_INDEXES`), so until then something else has to answer "is this id new?" for every resource
//! and grant. A SQLite temp table did it with two statements per row; this table answers with one probe and
//! needs SQLite only for the rare candidate. docs/performance.md has the numbers.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// One recorded row: the tag of its key's hash and its rowid minus [`SeenIndex`]'s base.
#[derive(Debug, Clone, Copy)]
struct Slot {
    tag: u32,
    offset: u32,
}

/// Keys seen in the current sync of one table; see the module documentation.
pub(crate) struct SeenIndex {
    table: HashTable<Slot>,
    hasher: std::collections::hash_map::RandomState,
    /// Rowid of the first recorded row; offsets are counted from it.
    base: Option<i64>,
}

/// A row that cannot be recorded: its rowid is more than 2^32 rows away from the first row of the sync (only a
/// carried-over file whose row ids ran out makes SQLite hand out such rowids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowOutOfRange(pub i64);

/// The table's own hash of a slot: hashbrown needs one it can recompute from the slot when it grows, so it is
/// derived from the 32-bit tag (the multiplication spreads the tag into the high bits hashbrown reads).
fn slot_hash(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl SeenIndex {
    pub(crate) fn new() -> SeenIndex {
        SeenIndex { table: HashTable::new(), hasher: Default::default(), base: None }
    }

    /// The tag of `key`.
    pub(crate) fn tag(&self, key: &str) -> u32 {
        let h = self.hasher.hash_one(key);
        (h >> 32) as u32 ^ h as u32
    }

    /// The first recorded row for which `is_key(rowid)` says it holds the key being looked up (the key's tag is
    /// `tag`). `is_key` is called only for rows with the same tag; its error ends the search.
    pub(crate) fn find<E>(&self, tag: u32, mut is_key: impl FnMut(i64) -> Result<bool, E>) -> Result<Option<i64>, E> {
        let Some(base) = self.base else {
            return Ok(None);
        };
        let mut failure = None;
        let found = self.table.find(slot_hash(tag), |slot| {
            if slot.tag != tag || failure.is_some() {
                return false;
            }
            match is_key(base + i64::from(slot.offset)) {
                Ok(same) => same,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(found.map(|slot| base + i64::from(slot.offset))),
        }
    }

    /// Records that `rowid` holds a key with tag `tag`. Rows of the same tag are all kept (different keys).
    pub(crate) fn record(&mut self, tag: u32, rowid: i64) -> Result<(), RowOutOfRange> {
        let base = *self.base.get_or_insert(rowid);
        let offset = rowid.checked_sub(base).and_then(|d| u32::try_from(d).ok()).ok_or(RowOutOfRange(rowid))?;
        self.table.insert_unique(slot_hash(tag), Slot { tag, offset }, |slot| slot_hash(slot.tag));
        Ok(())
    }

    /// Forgets every row (their rowids changed), keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.base = None;
    }

    /// Releases the table's memory.
    pub(crate) fn release(&mut self) {
        self.table = HashTable::new();
        self.base = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(index: &SeenIndex, key: &str, rows: &[(i64, &str)]) -> Option<i64> {
        let is_key = |row: i64| Ok::<_, ()>(rows.iter().any(|(r, k)| *r == row && *k == key));
        index.find(index.tag(key), is_key).unwrap()
    }

    #[test]
    fn finds_recorded_keys_and_only_those() {
        let mut index = SeenIndex::new();
        let rows: Vec<(i64, String)> = (0..10_000).map(|i| (100 + i, format!("user:{i}"))).collect();
        for (row, key) in &rows {
            index.record(index.tag(key), *row).unwrap();
        }
        let view: Vec<(i64, &str)> = rows.iter().map(|(r, k)| (*r, k.as_str())).collect();
        for (row, key) in &view {
            assert_eq!(find(&index, key, &view), Some(*row));
        }
        assert_eq!(find(&index, "user:10000", &view), None);
    }

    #[test]
    fn same_tag_different_keys_are_both_kept() {
        let mut index = SeenIndex::new();
        let tag = index.tag("a");
        // "b" pretends to share a's tag: both rows are candidates, and the caller's check tells them apart.
        index.record(tag, 7).unwrap();
        index.record(tag, 8).unwrap();
        let rows = [(7, "a"), (8, "b")];
        let is = |key: &'static str| move |row: i64| Ok::<_, ()>(rows.iter().any(|(r, k)| *r == row && *k == key));
        assert_eq!(index.find(tag, is("a")).unwrap(), Some(7));
        assert_eq!(index.find(tag, is("b")).unwrap(), Some(8));
        assert_eq!(index.find(tag, is("c")).unwrap(), None);
    }

    #[test]
    fn an_error_of_the_check_ends_the_search() {
        let mut index = SeenIndex::new();
        let tag = index.tag("a");
        index.record(tag, 1).unwrap();
        assert_eq!(index.find(tag, |_| Err("disk")), Err("disk"));
    }

    #[test]
    fn rows_far_from_the_first_are_refused_not_wrapped() {
        let mut index = SeenIndex::new();
        index.record(1, 10).unwrap();
        assert_eq!(index.record(2, 9), Err(RowOutOfRange(9)));
        assert_eq!(index.record(2, 10 + (1 << 32)), Err(RowOutOfRange(10 + (1 << 32))));
        index.clear();
        index.record(2, 1 << 40).unwrap();
    }
}
