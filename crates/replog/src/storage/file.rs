//! The durable file storage: one append-only file of checksummed records.
//!
//! Record framing: `len: u32 LE | crc32c(payload): u32 LE | payload` (a protobuf `PbRecord`).
//! Every append is followed by `sync_data` before it returns. On open, a record that fails its
//! checksum or is cut short is a *torn tail* if nothing valid follows it: the tail was never
//! acknowledged (acks wait for fsync), so it is cut off. If valid records follow, the file is
//! corrupt and opening fails. Compaction writes `log.compact`, fsyncs it, renames it over `log`
//! and fsyncs the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{Storage, StorageError};
use crate::codec::{decode_record, encode_record};
use crate::types::Record;

const HEADER: usize = 8;

pub struct FileStorage {
    dir: PathBuf,
    file: File,
    size: u64,
    /// Bytes cut off a torn tail at open (for diagnostics and tests).
    pub torn_tail_bytes: u64,
    /// Held for the lifetime of the storage: one process per replica directory.
    _lock: File,
}

impl FileStorage {
    /// Opens (creating if needed) the storage in directory `dir`.
    pub fn open(dir: &Path) -> Result<FileStorage, StorageError> {
        let io = |source| StorageError::Io {
            path: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(io)?;
        if lock.try_lock().is_err() {
            return Err(StorageError::Locked {
                path: dir.display().to_string(),
            });
        }
        let _ = fs::remove_file(dir.join("log.compact"));
        let path = dir.join("log");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            file,
            size,
            torn_tail_bytes: 0,
            _lock: lock,
        })
    }

    /// The directory this storage lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: self.dir.join("log").display().to_string(),
            source,
        }
    }

    fn frame(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in records {
            let payload = encode_record(record);
            out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
            out.extend_from_slice(&payload);
        }
        out
    }

    fn cut_tail(&mut self, offset: u64) -> Result<(), StorageError> {
        tracing::warn!(path = %self.dir.display(), offset, dropped = self.size - offset, "cutting torn tail of the replica log");
        self.torn_tail_bytes = self.size - offset;
        self.file.set_len(offset).map_err(|e| self.io(e))?;
        self.file.sync_all().map_err(|e| self.io(e))?;
        self.size = offset;
        Ok(())
    }
}

/// Parses the record at `offset`; `None` if it is torn or fails its checksum.
fn parse_at(buf: &[u8], offset: usize) -> Option<(Record, usize)> {
    let header = buf.get(offset..offset + HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let payload = buf.get(offset + HEADER..offset + HEADER + len)?;
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    let record = decode_record(payload).ok()?;
    Some((record, offset + HEADER + len))
}

impl Storage for FileStorage {
    fn load(&mut self) -> Result<Vec<Record>, StorageError> {
        let mut buf = Vec::with_capacity(self.size as usize);
        let mut reader = File::open(self.dir.join("log")).map_err(|e| self.io(e))?;
        reader.read_to_end(&mut buf).map_err(|e| self.io(e))?;
        let mut records = Vec::new();
        let mut offset = 0;
        while offset < buf.len() {
            match parse_at(&buf, offset) {
                Some((record, next)) => {
                    records.push(record);
                    offset = next;
                }
                None if (offset + 1..buf.len()).any(|o| parse_at(&buf, o).is_some()) => {
                    let path = self.dir.join("log").display().to_string();
                    return Err(StorageError::Corrupt {
                        path,
                        offset: offset as u64,
                    });
                }
                None => {
                    self.cut_tail(offset as u64)?;
                    break;
                }
            }
        }
        Ok(records)
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes = Self::frame(records);
        self.file.write_all(&bytes).map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rewrite(&mut self, records: &[Record]) -> Result<(), StorageError> {
        let tmp = self.dir.join("log.compact");
        let bytes = Self::frame(records);
        let mut out = File::create(&tmp).map_err(|e| self.io(e))?;
        out.write_all(&bytes).map_err(|e| self.io(e))?;
        out.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, self.dir.join("log")).map_err(|e| self.io(e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(e))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(self.dir.join("log"))
            .map_err(|e| self.io(e))?;
        self.size = bytes.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }
}
