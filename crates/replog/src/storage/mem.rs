//! In-memory storage for tests and simulation. Shares its content through an `Arc`, so a
//! test can "reopen" it after dropping the log.

use std::sync::{Arc, Mutex};

use super::{Storage, StorageError};
use crate::types::Record;

#[derive(Clone, Default)]
pub struct MemStorage {
    records: Arc<Mutex<Vec<Record>>>,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }
}

impl Storage for MemStorage {
    fn load(&mut self) -> Result<Vec<Record>, StorageError> {
        Ok(self.records.lock().expect("not poisoned").clone())
    }
    fn append(&mut self, records: &[Record]) -> Result<(), StorageError> {
        self.records
            .lock()
            .expect("not poisoned")
            .extend_from_slice(records);
        Ok(())
    }
    fn rewrite(&mut self, records: &[Record]) -> Result<(), StorageError> {
        *self.records.lock().expect("not poisoned") = records.to_vec();
        Ok(())
    }
    fn size(&self) -> u64 {
        let records = self.records.lock().expect("not poisoned");
        records
            .iter()
            .map(|r| crate::codec::encode_record(r).len() as u64 + 8)
            .sum()
    }
}
