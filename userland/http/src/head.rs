//! Response head: status line and header fields, parsed line by line.
//!
//! Lines arrive in arbitrary pieces, so `LineReader` accumulates one line at a
//! time under a length limit, and `FieldBlock` validates each field line as it
//! completes (RFC 9112 §4 status line, §5 field syntax). The same two pieces parse
//! the trailer section of a chunked body. Limits keep a hostile server from
//! growing the client's heap without bound: 16 KiB per block, 8 KiB per line, 100
//! fields.

use alloc::string::String;
use alloc::vec::Vec;

use super::HttpError;

/// Size limit of a header (or trailer) block, status line included.
pub(super) const MAX_BLOCK: usize = 16 * 1024;
/// Size limit of one line, CR included, LF not.
pub(super) const MAX_LINE: usize = 8 * 1024;
/// Field-count limit of a header (or trailer) block.
pub(super) const MAX_FIELDS: usize = 100;

/// Accumulates one LF-terminated line from arbitrary input pieces.
#[derive(Debug, Default)]
pub(super) struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    /// Takes bytes up to and including the first LF. Returns how many bytes of
    /// `input` were consumed and whether the line is now complete; `too_long` is
    /// returned if the line would exceed `limit`.
    pub(super) fn take(
        &mut self,
        input: &[u8],
        limit: usize,
        too_long: HttpError,
    ) -> Result<(usize, bool), HttpError> {
        let (part, used, done) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], i + 1, true),
            None => (input, input.len(), false),
        };
        if self.buf.len() + part.len() > limit {
            return Err(too_long);
        }
        self.buf.extend_from_slice(part);
        Ok((used, done))
    }

    /// The complete line without CR LF (a bare LF is accepted, RFC 9112 §2.2).
    pub(super) fn line(&self) -> &[u8] {
        self.buf.strip_suffix(b"\r").unwrap_or(&self.buf)
    }

    pub(super) fn clear(&mut self) {
        self.buf.clear();
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

/// Header or trailer fields being collected, with the block's limits.
#[derive(Debug, Default)]
pub(super) struct FieldBlock {
    fields: Vec<Field>,
}

impl FieldBlock {
    /// Adds one complete line (without its line ending). Returns `true` for the
    /// empty line that ends the block.
    pub(super) fn push_line(&mut self, line: &[u8]) -> Result<bool, HttpError> {
        if line.is_empty() {
            return Ok(true);
        }
        if let Some(continuation) = line.strip_prefix(b" ").or(line.strip_prefix(b"\t")) {
            // obs-fold: RFC 9112 §5.2 has a user agent replace it with a space.
            let last = self.fields.last_mut().ok_or(HttpError::MalformedHeader)?;
            let value = trim_ows(continuation);
            check_value(value)?;
            last.value.push(b' ');
            last.value.extend_from_slice(value);
            return Ok(false);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::MalformedHeader)?;
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        // No whitespace is allowed between name and colon (RFC 9112 §5.1).
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HttpError::MalformedHeader);
        }
        check_value(value)?;
        if self.fields.len() >= MAX_FIELDS {
            return Err(HttpError::TooManyHeaders);
        }
        let name = name
            .iter()
            .map(|&b| char::from(b.to_ascii_lowercase()))
            .collect();
        self.fields.push(Field {
            name,
            value: value.to_vec(),
        });
        Ok(false)
    }
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
    /// Parses the status line; fields are added by `with_fields`.
    pub(super) fn from_status_line(line: &[u8]) -> Result<Self, HttpError> {
        let bad = HttpError::MalformedStatusLine;
        let version = match line.get(..8) {
            Some(b"HTTP/1.1") => Version::Http11,
            Some(b"HTTP/1.0") => Version::Http10,
            _ => return Err(bad),
        };
        let rest = line[8..].strip_prefix(b" ").ok_or(bad)?;
        let code = rest.get(..3).ok_or(bad)?;
        if !code.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        let status = code
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        if !(100..=599).contains(&status) {
            return Err(bad);
        }
        // Some servers omit the space when the reason phrase is empty.
        let reason = match &rest[3..] {
            [] => &[][..],
            [b' ', reason @ ..] => reason,
            _ => return Err(bad),
        };
        if !reason
            .iter()
            .all(|&b| b == b'\t' || b == b' ' || is_vchar_or_obs(b))
        {
            return Err(bad);
        }
        let reason = String::from_utf8_lossy(reason).into_owned();
        Ok(Self {
            version,
            status,
            reason,
            fields: Vec::new(),
        })
    }

    pub(super) fn with_fields(mut self, block: FieldBlock) -> Self {
        self.fields = block.fields;
        self
    }

    /// Protocol version of the response.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Status code, 100..=599.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Reason phrase (non-UTF-8 bytes replaced).
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

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Field values may hold VCHAR, obs-text and inner SP/HTAB (RFC 9110 §5.5); a
/// stray CR, NUL or other control byte is rejected rather than passed on.
fn check_value(value: &[u8]) -> Result<(), HttpError> {
    if value
        .iter()
        .all(|&b| b == b' ' || b == b'\t' || is_vchar_or_obs(b))
    {
        Ok(())
    } else {
        Err(HttpError::MalformedHeader)
    }
}

fn is_vchar_or_obs(b: u8) -> bool {
    b.is_ascii_graphic() || b >= 0x80
}

/// Token characters (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let h = Head::from_status_line(b"HTTP/1.1 200 OK").unwrap();
        assert_eq!(
            (h.version(), h.status(), h.reason()),
            (Version::Http11, 200, "OK")
        );
        let h = Head::from_status_line(b"HTTP/1.0 404 Not  Found ").unwrap();
        assert_eq!(
            (h.version(), h.status(), h.reason()),
            (Version::Http10, 404, "Not  Found ")
        );
        assert_eq!(
            Head::from_status_line(b"HTTP/1.1 204").unwrap().reason(),
            ""
        );
        assert_eq!(
            Head::from_status_line(b"HTTP/1.1 204 ").unwrap().reason(),
            ""
        );
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
                Head::from_status_line(bad),
                Err(HttpError::MalformedStatusLine),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn field_lines() {
        let mut block = FieldBlock::default();
        assert_eq!(block.push_line(b"Content-Type:  text/plain \t"), Ok(false));
        assert_eq!(block.push_line(b"X-Empty:"), Ok(false));
        assert_eq!(block.push_line(b"X-Multi: a"), Ok(false));
        assert_eq!(block.push_line(b"\t b"), Ok(false));
        assert_eq!(block.push_line(b"x-multi: c"), Ok(false));
        assert_eq!(block.push_line(b"X-Obs: caf\xe9"), Ok(false));
        assert_eq!(block.push_line(b""), Ok(true));
        let head = Head::from_status_line(b"HTTP/1.1 200 OK")
            .unwrap()
            .with_fields(block);
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
            let mut block = FieldBlock::default();
            assert_eq!(
                block.push_line(bad),
                Err(HttpError::MalformedHeader),
                "{bad:?}"
            );
        }
        // A continuation line with nothing to continue.
        let mut block = FieldBlock::default();
        assert_eq!(block.push_line(b" x"), Err(HttpError::MalformedHeader));
    }

    #[test]
    fn field_count_limit() {
        let mut block = FieldBlock::default();
        for _ in 0..MAX_FIELDS {
            assert_eq!(block.push_line(b"X: y"), Ok(false));
        }
        assert_eq!(block.push_line(b"X: y"), Err(HttpError::TooManyHeaders));
    }

    #[test]
    fn line_reader_pieces_and_limit() {
        let mut r = LineReader::default();
        assert_eq!(r.take(b"ab", 5, HttpError::HeaderTooLarge), Ok((2, false)));
        assert_eq!(
            r.take(b"cd\r\nrest", 5, HttpError::HeaderTooLarge),
            Ok((4, true))
        );
        assert_eq!(r.line(), b"abcd");
        r.clear();
        assert_eq!(
            r.take(b"abcde\n", 4, HttpError::BadChunk),
            Err(HttpError::BadChunk)
        );
        let mut r = LineReader::default();
        assert_eq!(r.take(b"\n", 4, HttpError::BadChunk), Ok((1, true)));
        assert_eq!(r.line(), b"");
    }
}
