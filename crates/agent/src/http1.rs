//! A minimal HTTP/1.1 client over a std `TcpStream`, for the command executor: POST with a
//! protobuf body; answers framed by Content-Length, chunked, or the connection's end;
//! kept-alive connections. Nothing else (no TLS, redirects or proxies): the executor only
//! talks to its own agent. Limits keep a misbehaving peer from exhausting memory.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest status line + headers accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body or chunk accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Bound on one request/answer exchange of [`Connection::post`].
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// One connection to `host:port`.
pub struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The connection can carry another request.
    pub keep_alive: bool,
}

/// An answer whose body is read as it comes (an event stream).
pub struct Streaming {
    reader: BufReader<TcpStream>,
    pub status: u16,
    framing: Framing,
    line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
    Done,
}

struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

impl Connection {
    pub fn open(endpoint: &str) -> io::Result<Connection> {
        let stream = TcpStream::connect(endpoint)?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::with_capacity(16 * 1024, stream),
            host: endpoint.to_owned(),
        })
    }

    fn send(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
        let mut request = Vec::with_capacity(256 + body.len());
        write!(
            request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        )?;
        for (name, value) in headers {
            write!(request, "{name}: {value}\r\n")?;
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request)
    }

    /// POSTs `body` and reads the whole answer.
    pub fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Answer> {
        let socket = self.reader.get_ref();
        socket.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
        socket.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
        self.send(path, headers, body)?;
        let head = read_head(&mut self.reader)?;
        let mut line = String::new();
        let mut framing = head.framing;
        let mut answer = Vec::new();
        while let Some(chunk) = next_chunk(&mut self.reader, &mut framing, &mut line)? {
            if answer.len() + chunk.len() > MAX_BODY {
                return Err(invalid("answer body too large"));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status: head.status,
            body: answer,
            keep_alive: head.keep_alive && head.framing != Framing::UntilClose,
        })
    }

    /// POSTs `body` and returns once the answer's head is read; the body follows with
    /// [`Streaming::next_chunk`]. No timeout: a stream may stay quiet for long.
    pub fn post_streaming(
        mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Streaming> {
        self.send(path, headers, body)?;
        let head = read_head(&mut self.reader)?;
        Ok(Streaming {
            reader: self.reader,
            status: head.status,
            framing: head.framing,
            line: String::new(),
        })
    }
}

impl Streaming {
    /// The next piece of the body; `None` at its end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        next_chunk(&mut self.reader, &mut self.framing, &mut self.line)
    }

    /// The rest of the body (bounded).
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            if out.len() + chunk.len() > MAX_BODY {
                return Err(invalid("answer body too large"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

fn read_line(reader: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<()> {
    line.clear();
    let read = reader.by_ref().take(MAX_HEAD as u64).read_line(line)?;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed",
        ));
    }
    if !line.ends_with('\n') {
        return Err(invalid("line too long"));
    }
    Ok(())
}

fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Head> {
    let mut line = String::new();
    read_line(reader, &mut line)?;
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {:?}", line.trim_end())))?;
    let mut keep_alive = version == "HTTP/1.1";
    let mut length = None;
    let mut chunked = false;
    let mut total = 0;
    loop {
        read_line(reader, &mut line)?;
        total += line.len();
        if total > MAX_HEAD {
            return Err(invalid("answer head too large"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid(format!("bad header line {header:?}")));
        };
        let value = value.trim().to_ascii_lowercase();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if value.contains("close") {
                keep_alive = false;
            } else if value.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else {
        Framing::UntilClose
    };
    Ok(Head {
        status,
        framing,
        keep_alive,
    })
}

fn next_chunk(
    reader: &mut BufReader<TcpStream>,
    framing: &mut Framing,
    line: &mut String,
) -> io::Result<Option<Vec<u8>>> {
    match *framing {
        Framing::Done | Framing::Length(0) => {
            *framing = Framing::Done;
            Ok(None)
        }
        Framing::Length(remaining) => {
            if remaining > MAX_BODY {
                return Err(invalid("answer body too large"));
            }
            let mut data = vec![0; remaining];
            reader.read_exact(&mut data)?;
            *framing = Framing::Done;
            Ok(Some(data))
        }
        Framing::UntilClose => {
            let mut data = vec![0; 16 * 1024];
            let n = reader.read(&mut data)?;
            if n == 0 {
                *framing = Framing::Done;
                return Ok(None);
            }
            data.truncate(n);
            Ok(Some(data))
        }
        Framing::Chunked => {
            read_line(reader, line)?;
            let size_text = line.trim_end().split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    read_line(reader, line)?;
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                *framing = Framing::Done;
                return Ok(None);
            }
            if size > MAX_BODY {
                return Err(invalid("chunk too large"));
            }
            let mut data = vec![0; size];
            reader.read_exact(&mut data)?;
            read_line(reader, line)?;
            if !line.trim_end().is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
            Ok(Some(data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that reads one request and writes `answer` verbatim.
    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 4096];
            let mut seen = Vec::new();
            // Read until the end of the head plus a body of 3 bytes ("abc").
            while !seen.windows(7).any(|w| w == b"\r\n\r\nabc") {
                let n = socket.read(&mut buffer).unwrap();
                if n == 0 {
                    return;
                }
                seen.extend_from_slice(&buffer[..n]);
            }
            socket.write_all(answer).unwrap();
        });
        address
    }

    #[test]
    fn reads_a_content_length_answer() {
        let address = serve_once(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok");
        let mut connection = Connection::open(&address).unwrap();
        let answer = connection.post("/x", &[], b"abc").unwrap();
        assert_eq!(answer.status, 202);
        assert_eq!(answer.body, b"ok");
        assert!(answer.keep_alive);
    }

    #[test]
    fn reads_a_chunked_stream_piece_by_piece() {
        let address = serve_once(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n5;x=y\r\nthree\r\n0\r\n\r\n",
        );
        let connection = Connection::open(&address).unwrap();
        let mut stream = connection
            .post_streaming("/x", &[("Accept", "application/x-protobuf")], b"abc")
            .unwrap();
        assert_eq!(stream.status, 200);
        assert_eq!(stream.next_chunk().unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(stream.next_chunk().unwrap().as_deref(), Some(&b"three"[..]));
        assert_eq!(stream.next_chunk().unwrap(), None);
    }

    #[test]
    fn connection_close_and_bad_answers_are_reported() {
        let address = serve_once(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\nno");
        let mut connection = Connection::open(&address).unwrap();
        let answer = connection.post("/x", &[], b"abc").unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (400, &b"no"[..]));
        assert!(!answer.keep_alive);

        let address = serve_once(b"SPDY nonsense\r\n\r\n");
        let mut connection = Connection::open(&address).unwrap();
        let error = connection.post("/x", &[], b"abc").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let address = serve_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
        let connection = Connection::open(&address).unwrap();
        let mut stream = connection.post_streaming("/x", &[], b"abc").unwrap();
        assert_eq!(
            stream.next_chunk().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
