//! RecordIO framing: `record = <decimal length> "\n" <length bytes>`, as Mesos streams
//! events. Records are independent of HTTP chunks: a decoder must accept a record split
//! across chunks and several records in one chunk.

/// Frames one record.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let header = payload.len().to_string();
    let mut out = Vec::with_capacity(header.len() + 1 + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("RecordIO: invalid length header {0:?}")]
    BadHeader(String),
    #[error("RecordIO: record of {0} bytes exceeds the limit of {1} bytes")]
    TooLarge(u64, usize),
}

/// An incremental decoder: `push` bytes as they arrive, then take records with `next`.
#[derive(Debug)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
    max_record: usize,
}

impl Decoder {
    pub fn new(max_record: usize) -> Self {
        Decoder {
            buffer: Vec::new(),
            start: 0,
            max_record,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        self.buffer.extend_from_slice(data);
    }

    /// The next complete record, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)] // fallible and incremental: not an Iterator
    pub fn next(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let pending = &self.buffer[self.start..];
        let Some(newline) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() > 20 {
                return Err(Error::BadHeader(
                    String::from_utf8_lossy(pending).into_owned(),
                ));
            }
            return Ok(None);
        };
        let header = &pending[..newline];
        let text = std::str::from_utf8(header)
            .map_err(|_| Error::BadHeader(String::from_utf8_lossy(header).into_owned()))?;
        let length: u64 = text
            .trim()
            .parse()
            .map_err(|_| Error::BadHeader(text.to_owned()))?;
        if length > self.max_record as u64 {
            return Err(Error::TooLarge(length, self.max_record));
        }
        let length = length as usize;
        let body_start = newline + 1;
        if pending.len() < body_start + length {
            return Ok(None);
        }
        let record = pending[body_start..body_start + length].to_vec();
        self.start += body_start + length;
        if self.start > 64 * 1024 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_a_record_as_length_newline_payload() {
        assert_eq!(
            encode(b"{\"type\":\"HEARTBEAT\"}"),
            b"20\n{\"type\":\"HEARTBEAT\"}"
        );
    }

    #[test]
    fn rejects_a_non_numeric_header() {
        let mut decoder = Decoder::new(1024);
        decoder.push(b"abc\nxyz");
        assert!(matches!(decoder.next(), Err(Error::BadHeader(_))));
    }

    #[test]
    fn rejects_an_oversized_record_before_buffering_it() {
        let mut decoder = Decoder::new(10);
        decoder.push(b"11\n");
        assert_eq!(decoder.next(), Err(Error::TooLarge(11, 10)));
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_decodes_to_the_same_records(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..8),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut decoder = Decoder::new(1024);
            let mut decoded = Vec::new();
            let mut last = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                decoder.push(&stream[last..cut]);
                last = cut;
                while let Some(record) = decoder.next().unwrap() {
                    decoded.push(record);
                }
            }
            prop_assert_eq!(decoded, records);
        }
    }
}
