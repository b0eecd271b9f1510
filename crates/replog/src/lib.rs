//! The replicated log (placeholder docs, replaced below).
pub mod codec;
pub mod core;
mod driver;
mod log;
pub mod storage;
mod transport;
pub mod types;

pub use driver::LogStatus;
pub use log::{Config, Log, OpenError, Reader, ReaderError, WriteError, Writer, validate_membership};
