//! The decisions of `/files/read` and `/files/browse` without the disk: query parameters
//! to a byte window of a file, and a file's metadata to Mesos's browse entry.

/// Bytes one read answers at most, whatever `length` asks for (Mesos answers a window of a
/// file, never all of a big one; a client reads on from the offset it got).
pub const MAX_READ: u64 = 1 << 20;

/// Why the query is refused: a 400 with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// What one read answers, given the file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `offset=-1`: no data, and the file's size as the offset (where a follower starts).
    Size(u64),
    /// `len` bytes from `offset` (`len` may be 0 at or past the end).
    Bytes {
        /// Where to seek.
        offset: u64,
        /// How many bytes to read.
        len: u64,
    },
}

/// `offset` or `length` from the query: absent, `-1`, or a non-negative integer.
pub fn parse_param(name: &str, value: Option<&str>) -> Result<Option<i64>, BadRequest> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|e| BadRequest(format!("Failed to parse {name}: {e}")))?;
    if parsed < -1 {
        return Err(BadRequest(format!("Negative {name} provided: {parsed}")));
    }
    Ok(Some(parsed))
}

/// The window `offset` and `length` (each absent or `-1` as Mesos: from the start, to the
/// end) ask of a file of `size` bytes, capped at [`MAX_READ`].
pub fn window(offset: Option<i64>, length: Option<i64>, size: u64) -> Window {
    let offset = match offset {
        Some(-1) => return Window::Size(size),
        Some(offset) => u64::try_from(offset).unwrap_or(0),
        None => 0,
    };
    let left = size.saturating_sub(offset);
    let wanted = match length {
        Some(length) if length >= 0 => u64::try_from(length).unwrap_or(0),
        _ => left,
    };
    Window::Bytes {
        offset,
        len: wanted.min(left).min(MAX_READ),
    }
}

/// How much of a window's `data` to answer so that no UTF-8 character is cut at its end
/// (the rest comes with the next read, and a client's `offset + data.length` stays
/// right): `data` without an incomplete trailing sequence, unless that is all there is.
pub fn complete_utf8(data: &[u8]) -> usize {
    let Err(error) = std::str::from_utf8(data) else {
        return data.len();
    };
    let valid = error.valid_up_to();
    match error.error_len() {
        // An incomplete sequence at the end, and something before it.
        None if valid > 0 => valid,
        _ => data.len(),
    }
}

/// A file's metadata as `/files/browse` lists it.
pub struct Entry<'a> {
    /// The path as the client named it (the directory asked for joined with the name).
    pub path: String,
    /// `st_nlink`.
    pub nlink: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime`, seconds since the epoch.
    pub mtime: i64,
    /// `st_mode`.
    pub mode: u32,
    /// The owner's name (or uid).
    pub uid: &'a str,
    /// The group's name (or gid).
    pub gid: &'a str,
}

impl Entry<'_> {
    /// Mesos's JSON for one browse entry (`mode` as `ls -l` shows it).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "nlink": self.nlink,
            "size": self.size,
            "mtime": self.mtime,
            "mode": mode_string(self.mode),
            "uid": self.uid,
            "gid": self.gid,
        })
    }
}

/// `st_mode` as `ls -l`'s ten characters, e.g. `drwxr-xr-x`.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o120_000 => 'l',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o140_000 => 's',
        _ => '-',
    };
    let mut out = String::with_capacity(10);
    out.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    out
}

/// The path a browse entry shows: the directory as asked for, then the name.
pub fn child_path(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_lengths_pick_a_window_within_the_file() {
        assert_eq!(window(Some(-1), None, 42), Window::Size(42));
        assert_eq!(window(Some(-1), Some(5), 42), Window::Size(42));
        let bytes = |offset, len| Window::Bytes { offset, len };
        assert_eq!(window(None, None, 42), bytes(0, 42));
        assert_eq!(window(Some(10), None, 42), bytes(10, 32));
        assert_eq!(window(Some(10), Some(5), 42), bytes(10, 5));
        assert_eq!(window(Some(40), Some(5), 42), bytes(40, 2));
        assert_eq!(window(Some(42), Some(5), 42), bytes(42, 0));
        assert_eq!(window(Some(100), None, 42), bytes(100, 0));
        assert_eq!(window(Some(0), Some(-1), 42), bytes(0, 42));
        assert_eq!(window(Some(0), Some(0), 42), bytes(0, 0));
        let big = 10 * MAX_READ;
        assert_eq!(window(Some(1), None, big), bytes(1, MAX_READ));
        assert_eq!(window(None, Some(i64::MAX), big), bytes(0, MAX_READ));
    }

    #[test]
    fn windows_do_not_cut_characters() {
        let text = "a\u{e9}b".as_bytes(); // 'a', two bytes of 'é', 'b'
        assert_eq!(complete_utf8(text), 4);
        assert_eq!(complete_utf8(&text[..2]), 1);
        assert_eq!(complete_utf8(&text[1..2]), 1);
        assert_eq!(complete_utf8(b"ab\xff"), 3);
        assert_eq!(complete_utf8(b"ab\xffc"), 4);
        assert_eq!(complete_utf8(b""), 0);
    }

    #[test]
    fn bad_parameters_are_refused_with_a_reason() {
        assert_eq!(parse_param("offset", None), Ok(None));
        assert_eq!(parse_param("offset", Some("-1")), Ok(Some(-1)));
        assert_eq!(parse_param("length", Some("17")), Ok(Some(17)));
        let refused = |value| parse_param("offset", Some(value)).unwrap_err().0;
        assert!(refused("-2").contains("Negative offset"));
        assert!(refused("abc").starts_with("Failed to parse offset"));
        assert!(refused("").starts_with("Failed to parse offset"));
        assert!(refused("99999999999999999999").starts_with("Failed to parse"));
    }

    #[test]
    fn browse_entries_have_mesos_keys() {
        assert_eq!(mode_string(0o100_644), "-rw-r--r--");
        assert_eq!(mode_string(0o040_755), "drwxr-xr-x");
        assert_eq!(mode_string(0o120_777), "lrwxrwxrwx");
        assert_eq!(child_path("/a/b/", "stdout"), "/a/b/stdout");
        let entry = Entry {
            path: child_path("/a", "x"),
            nlink: 1,
            size: 3,
            mtime: 7,
            mode: 0o100_600,
            uid: "root",
            gid: "0",
        };
        let json = entry.json();
        let mut keys: Vec<_> = json
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            ["gid", "mode", "mtime", "nlink", "path", "size", "uid"]
        );
        assert_eq!(json["mode"], "-rw-------");
        assert_eq!(json["path"], "/a/x");
    }
}
