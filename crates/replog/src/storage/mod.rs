//! Durable storage of replica records.
//!
//! [`Storage`] is what the driver needs: load everything at open, append a batch durably,
//! and rewrite the whole content atomically after a truncation. [`FileStorage`] is the real
//! one (`<work_dir>/replicated_log/log`), [`MemStorage`] the in-memory one; both pass
//! [`testing::run_all`].

mod file;
mod mem;
pub mod testing;
#[cfg(test)]
mod tests;

pub use file::FileStorage;
pub use mem::MemStorage;

use crate::types::Record;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "corrupt record at byte {offset} of {path} followed by valid records: refusing to open (wipe the replica's directory to let it rejoin by catching up)"
    )]
    Corrupt { path: String, offset: u64 },
    #[error("{path} is locked by another process")]
    Locked { path: String },
}

pub trait Storage: Send {
    /// Every durable record, in the order it was appended. Called once, at open.
    fn load(&mut self) -> Result<Vec<Record>, StorageError>;
    /// Appends `records` and makes them durable (fsync) before returning.
    fn append(&mut self, records: &[Record]) -> Result<(), StorageError>;
    /// Atomically replaces the whole content with `records` (compaction after truncation).
    fn rewrite(&mut self, records: &[Record]) -> Result<(), StorageError>;
    /// Bytes used on disk (or in memory).
    fn size(&self) -> u64;
}
