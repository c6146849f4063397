//! Response head and trailer section: we gather the bytes, httparse reads them.
//!
//! A head (status line and header fields, RFC 9112 §4, §5) or the trailer section of
//! a chunked body arrives in arbitrary pieces. `BlockReader` gathers its bytes under
//! the limits and hands all of them to httparse after every piece, until httparse
//! finds the end of the block; bytes after that end are left to the caller (they are
//! body, or the next head after an interim 1xx response). httparse checks the syntax:
//! the version, the three-digit status, the reason's characters, field names as
//! tokens with no space before the colon, field values as VCHAR, obs-text, SP and
//! HTAB, and the field count. Ours are the limits, a status in 100..=599 (httparse
//! takes any three digits), no empty line before the status line (httparse skips
//! them, as a server may before a request), and obs-fold in a head, which httparse
//! passes through raw and a user agent must replace with a space (RFC 9112 §5.2).
//! Trailers go through `httparse::parse_headers`, which takes no obs-fold; they are
//! checked and dropped. The limits keep a hostile server from growing the client's
//! heap without bound: 16 KiB per block (interim heads count against the final
//! one), 8 KiB per line, 100 fields. httparse cannot resume, so a block arriving in
//! many pieces is parsed again from its start after each: at most 16 KiB per piece.

use alloc::string::String;
use alloc::vec::Vec;

use httparse::{EMPTY_HEADER, ParserConfig, Status};

use super::HttpError;

/// Size limit of a header (or trailer) block, status line included.
pub(super) const MAX_BLOCK: usize = 16 * 1024;
/// Size limit of one line, CR included, LF not.
pub(super) const MAX_LINE: usize = 8 * 1024;
/// Field-count limit of a header (or trailer) block.
pub(super) const MAX_FIELDS: usize = 100;

/// What `BlockReader::feed` achieved.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Block<T> {
    /// The block is not complete yet; all of the input was taken.
    Partial,
    /// The block is complete: its value, and how many bytes of the input were its.
    Complete(T, usize),
}

/// Gathers the bytes of consecutive blocks (the heads of one response, or one
/// trailer section) under one budget of `MAX_BLOCK` bytes, with lines of at most
/// `MAX_LINE` bytes.
#[derive(Debug, Default)]
pub(super) struct BlockReader {
    /// The block so far.
    buf: Vec<u8>,
    /// Length of the unfinished last line in `buf`.
    line: usize,
    /// Bytes of the blocks already complete.
    spent: usize,
}

impl BlockReader {
    /// Takes bytes of `input` as far as the limits allow and hands the block so far
    /// to `parse`, which returns the block's value and length once it is complete.
    /// The result does not depend on how the input is split: the limits only stop
    /// the bytes that `parse` sees, and a block not complete before them is
    /// `HeaderTooLarge`.
    pub(super) fn feed<T>(
        &mut self,
        input: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<Option<(T, usize)>, HttpError>,
    ) -> Result<Block<T>, HttpError> {
        let before = self.buf.len();
        let room = MAX_BLOCK - self.spent - before;
        let mut taken = 0;
        for &b in input {
            if taken == room || (b != b'\n' && self.line == MAX_LINE) {
                break;
            }
            self.line = if b == b'\n' { 0 } else { self.line + 1 };
            taken += 1;
        }
        self.buf.extend_from_slice(&input[..taken]);
        match parse(&self.buf)? {
            Some((value, len)) => {
                // `len > before`: the bytes before this input held no complete block.
                self.spent += len;
                self.buf.clear();
                self.line = 0;
                Ok(Block::Complete(value, len - before))
            }
            None if taken < input.len() => Err(HttpError::HeaderTooLarge),
            None => Ok(Block::Partial),
        }
    }
}

/// Protocol version from the status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

/// One header field; the name is stored lower-case (names are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    name: String,
    value: Vec<u8>,
}

/// Status line and header fields of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    version: Version,
    status: u16,
    reason: String,
    fields: Vec<Field>,
}

impl Head {
    /// Protocol version of the response.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Status code, 100..=599.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Reason phrase (empty if it held bytes outside ASCII, as httparse reports it).
    #[cfg(test)]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Value of the first field called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let field = self
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        Some(&field.value)
    }

    /// Values of every field called `name`, in order.
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
    }
}

/// Parses the head at the start of `buf`: the head and its length once complete,
/// `None` while more bytes are needed.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    if matches!(buf.first(), Some(b'\r' | b'\n')) {
        return Err(HttpError::MalformedStatusLine);
    }
    let mut fields = [EMPTY_HEADER; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    let parsed = ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response(&mut response, buf);
    if response.code.is_some_and(|c| !(100..=599).contains(&c)) {
        return Err(HttpError::MalformedStatusLine);
    }
    let len = match parsed {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        // httparse sets the reason once the status line is complete.
        Err(e) if response.reason.is_some() => return Err(field_error(e)),
        Err(_) => return Err(HttpError::MalformedStatusLine),
    };
    let head = Head {
        version: match response.version {
            Some(0) => Version::Http10,
            _ => Version::Http11,
        },
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().into(),
        fields: response
            .headers
            .iter()
            .map(|f| Field {
                name: f.name.to_ascii_lowercase(),
                value: unfold(f.value),
            })
            .collect(),
    };
    Ok(Some((head, len)))
}

/// Parses the trailer section at the start of `buf` (after the last chunk): its
/// length once complete, `None` while more bytes are needed. The fields are
/// checked and dropped.
pub(super) fn parse_trailers(buf: &[u8]) -> Result<Option<((), usize)>, HttpError> {
    let mut fields = [EMPTY_HEADER; MAX_FIELDS];
    match httparse::parse_headers(buf, &mut fields).map_err(field_error)? {
        Status::Complete((len, _)) => Ok(Some(((), len))),
        Status::Partial => Ok(None),
    }
}

fn field_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        _ => HttpError::MalformedHeader,
    }
}

/// A field value with each obs-fold (CRLF, then SP / HTAB) and the whitespace
/// around it replaced by one space (httparse has trimmed the value's ends).
fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, line) in value.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(line.trim_ascii());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    /// The head of `status_line` with `fields` (each without its line ending).
    fn head_of(status_line: &[u8], fields: &[&[u8]]) -> Result<Head, HttpError> {
        let mut wire = Vec::from(status_line);
        for field in fields.iter().copied() {
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(field);
        }
        wire.extend_from_slice(b"\r\n\r\n");
        let (head, len) = parse_head(&wire)?.expect("a complete head");
        assert_eq!(len, wire.len());
        Ok(head)
    }

    #[test]
    fn status_lines() {
        let h = head_of(b"HTTP/1.1 200 OK", &[]).unwrap();
        assert_eq!(
            (h.version(), h.status(), h.reason()),
            (Version::Http11, 200, "OK")
        );
        let h = head_of(b"HTTP/1.0 404 Not  Found ", &[]).unwrap();
        assert_eq!(
            (h.version(), h.status(), h.reason()),
            (Version::Http10, 404, "Not  Found ")
        );
        assert_eq!(head_of(b"HTTP/1.1 204", &[]).unwrap().reason(), "");
        assert_eq!(head_of(b"HTTP/1.1 204 ", &[]).unwrap().reason(), "");
        // httparse reports a reason with obs-text as empty.
        assert_eq!(head_of(b"HTTP/1.1 200 caf\xe9", &[]).unwrap().reason(), "");
        for bad in [
            &b""[..],
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 20x OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1 099 Low",
            b"HTTP/1.1 600 High",
            b"HTTP/2.0 200 OK",
            b"http/1.1 200 OK",
            b"HTTP/1.1 200 O\x00K",
            b"HTTP/1.1 200 O\rK",
            b"ICY 200 OK",
            b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7",
        ] {
            assert_eq!(
                head_of(bad, &[]),
                Err(HttpError::MalformedStatusLine),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn field_lines() {
        let head = head_of(
            b"HTTP/1.1 200 OK",
            &[
                b"Content-Type:  text/plain \t",
                b"X-Empty:",
                b"X-Multi: a",
                b"\t b",
                b"x-multi: c",
                b"X-Obs: caf\xe9",
            ],
        )
        .unwrap();
        assert_eq!(head.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(head.header("CONTENT-TYPE"), Some(&b"text/plain"[..]));
        assert_eq!(head.header("x-empty"), Some(&b""[..]));
        assert_eq!(
            head.headers("X-MULTI").collect::<Vec<_>>(),
            [&b"a b"[..], b"c"]
        );
        assert_eq!(head.header("x-obs"), Some(&b"caf\xe9"[..]));
        assert_eq!(head.header("missing"), None);
    }

    #[test]
    fn bad_field_lines() {
        for bad in [
            &b"NoColon"[..],
            b": no name",
            b"Name : space before colon",
            b"Na me: x",
            b"N\x00: x",
            b"X: a\x00b",
            b"X: a\rb",
            b"X: a\x7fb",
            b"\xc3\xa9: x",
        ] {
            assert_eq!(
                head_of(b"HTTP/1.1 200 OK", &[bad]),
                Err(HttpError::MalformedHeader),
                "{bad:?}"
            );
        }
        // A continuation line with nothing to continue.
        assert_eq!(
            head_of(b"HTTP/1.1 200 OK", &[b" x"]),
            Err(HttpError::MalformedHeader)
        );
    }

    #[test]
    fn field_count_limit() {
        let field = b"X: y".as_slice();
        let head = head_of(b"HTTP/1.1 200 OK", &[field; MAX_FIELDS]).unwrap();
        assert_eq!(head.headers("x").count(), MAX_FIELDS);
        assert_eq!(
            head_of(b"HTTP/1.1 200 OK", &[field; MAX_FIELDS + 1]),
            Err(HttpError::TooManyHeaders)
        );
    }

    #[test]
    fn incomplete_heads_need_more() {
        let wire = b"HTTP/1.1 200 OK\r\nX: a\r\n\r\n";
        for len in 0..wire.len() {
            assert_eq!(parse_head(&wire[..len]), Ok(None), "length {len}");
        }
        // An empty line before the status line is not skipped.
        assert_eq!(parse_head(b"\n"), Err(HttpError::MalformedStatusLine));
        // A bad status is refused as soon as its digits are there.
        assert_eq!(
            parse_head(b"HTTP/1.1 700"),
            Err(HttpError::MalformedStatusLine)
        );
    }

    /// Feeds `wire` to a reader in pieces of `size` and returns the outcome and the
    /// input bytes taken as the block's.
    fn read_in_pieces(wire: &[u8], size: usize) -> Result<Option<(Head, usize)>, HttpError> {
        let mut reader = BlockReader::default();
        let mut taken = 0;
        for piece in wire.chunks(size) {
            match reader.feed(piece, parse_head)? {
                Block::Partial => taken += piece.len(),
                Block::Complete(head, used) => return Ok(Some((head, taken + used))),
            }
        }
        Ok(None)
    }

    #[test]
    fn block_reader_pieces_and_limits() {
        let wire = b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nbody";
        for size in 1..=wire.len() {
            let (head, len) = read_in_pieces(wire, size).unwrap().unwrap();
            assert_eq!((head.header("x"), len), (Some(&b"y"[..]), wire.len() - 4));
        }
        // Lines: MAX_LINE bytes (CR included) pass, one more does not.
        for (extra, want) in [(0, Ok(())), (1, Err(HttpError::HeaderTooLarge))] {
            let value = "v".repeat(MAX_LINE - "X: \r".len() + extra);
            let wire = format!("HTTP/1.1 200 OK\r\nX: {value}\r\n\r\n");
            for size in [1, 1000, wire.len()] {
                let got = read_in_pieces(wire.as_bytes(), size).map(|_| ());
                assert_eq!(got, want, "extra {extra}, pieces of {size}");
            }
        }
    }

    #[test]
    fn trailer_sections() {
        let wire = b"Expires: never\r\nX-Check: 1\r\n\r\nnext";
        assert_eq!(parse_trailers(wire), Ok(Some(((), wire.len() - 4))));
        assert_eq!(parse_trailers(b"\r\n"), Ok(Some(((), 2))));
        assert_eq!(parse_trailers(b"\n"), Ok(Some(((), 1))));
        for len in 0..wire.len() - 4 {
            assert_eq!(parse_trailers(&wire[..len]), Ok(None), "length {len}");
        }
        for bad in [
            &b"No colon\r\n\r\n"[..],
            b"X: a\x00\r\n\r\n",
            b" fold\r\n\r\n",
        ] {
            assert_eq!(
                parse_trailers(bad),
                Err(HttpError::MalformedHeader),
                "{bad:?}"
            );
        }
        let flood = b"T: v\r\n".repeat(MAX_FIELDS);
        assert!(matches!(
            parse_trailers(&[&flood[..], b"\r\n"].concat()),
            Ok(Some(_))
        ));
        let flood = b"T: v\r\n".repeat(MAX_FIELDS + 1);
        assert_eq!(parse_trailers(&flood), Err(HttpError::TooManyHeaders));
    }
}
