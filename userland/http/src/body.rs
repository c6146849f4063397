//! Body framing: how long the body is, and the chunked decoder.
//!
//! RFC 9112 §6.3 decides the length from the head: no body for 1xx/204/304,
//! chunked if `Transfer-Encoding` says so, exactly `Content-Length` bytes if
//! given, otherwise everything until the server closes. Ambiguous combinations are
//! the classic request-smuggling vectors, so they are errors here, not guesses.
//! The chunked decoder (§7.1) is a byte-level state machine so a chunk header
//! split across TCP segments costs nothing extra.

use alloc::vec::Vec;

use super::head::{Block, BlockReader, Head, Version, parse_trailers};
use super::{ContentCoding, HttpError};

/// How the end of the body is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (1xx, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

impl Framing {
    /// The framing `head` announces for a response to GET.
    pub(super) fn of(head: &Head) -> Result<Self, HttpError> {
        let status = head.status();
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(Self::Empty);
        }
        let length = content_length(head)?;
        content_coding(head)?;
        if head.header("transfer-encoding").is_some() {
            if length.is_some() || head.version() == Version::Http10 {
                return Err(HttpError::AmbiguousFraming);
            }
            return if is_just_chunked(head) {
                Ok(Self::Chunked)
            } else {
                Err(HttpError::UnsupportedTransferEncoding)
            };
        }
        Ok(match length {
            Some(0) => Self::Empty,
            Some(n) => Self::Length(n),
            None => Self::UntilClose,
        })
    }
}

/// The single `Content-Length` value; repeated identical values (in one list or
/// several fields) are accepted as RFC 9110 §8.6 allows, differing ones are not.
fn content_length(head: &Head) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for value in head.headers("content-length") {
        for item in value.split(|&b| b == b',') {
            let n = parse_decimal(trim(item)).ok_or(HttpError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// A body in any content coding but `identity` is refused, naming the first such
/// coding: the request asked for `identity`, and returning an encoded body as if it
/// were the file would be a silent corruption.
fn content_coding(head: &Head) -> Result<(), HttpError> {
    let coding = head
        .headers("content-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"));
    match coding {
        Some(c) => Err(HttpError::UnsupportedContentEncoding(ContentCoding::of(c))),
        None => Ok(()),
    }
}

/// True if the transfer codings, over all fields, are exactly `chunked`.
fn is_just_chunked(head: &Head) -> bool {
    let mut codings = head
        .headers("transfer-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .filter(|c| !c.is_empty());
    codings
        .next()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
        && codings.next().is_none()
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let d = char::from(d).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Longest chunk-size line accepted (size plus extensions).
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Where the chunked decoder is (RFC 9112 §7.1).
#[derive(Debug)]
enum ChunkState {
    /// Reading `chunk-size [ chunk-ext ] CRLF`.
    Size,
    /// This many data bytes remain in the current chunk.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// Reading the trailer section after the last chunk.
    Trailers,
    Done,
}

/// Decoder for a chunked body.
#[derive(Debug)]
pub(super) struct Chunked {
    state: ChunkState,
    line: LineReader,
    trailers: BlockReader,
}

impl Chunked {
    pub(super) fn new() -> Self {
        Self {
            state: ChunkState::Size,
            line: LineReader::default(),
            trailers: BlockReader::default(),
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, ChunkState::Done)
    }

    /// Decodes from `input`, handing data to `sink`. Returns the bytes consumed,
    /// which is less than `input.len()` only once the body is complete.
    pub(super) fn feed(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<usize, HttpError> {
        let mut pos = 0;
        while pos < input.len() && !self.is_done() {
            let rest = &input[pos..];
            pos += match &mut self.state {
                ChunkState::Size => {
                    let (used, done) = self.line.take(rest, MAX_CHUNK_LINE, HttpError::BadChunk)?;
                    if done {
                        let size = parse_chunk_size(self.line.line())?;
                        self.line.clear();
                        self.state = match size {
                            0 => ChunkState::Trailers,
                            n => ChunkState::Data(n),
                        };
                    }
                    used
                }
                ChunkState::Data(remaining) => {
                    let n = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    sink(&rest[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    n
                }
                ChunkState::DataCr => {
                    self.state = expect(rest[0], b'\r', ChunkState::DataLf)?;
                    1
                }
                ChunkState::DataLf => {
                    self.state = expect(rest[0], b'\n', ChunkState::Size)?;
                    1
                }
                ChunkState::Trailers => match self.trailers.feed(rest, parse_trailers)? {
                    Block::Partial => rest.len(),
                    Block::Complete((), used) => {
                        self.state = ChunkState::Done;
                        used
                    }
                },
                ChunkState::Done => 0,
            };
        }
        Ok(pos)
    }
}

/// Accumulates one LF-terminated line (a chunk-size line) from arbitrary input pieces.
#[derive(Debug, Default)]
struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    /// Takes bytes up to and including the first LF. Returns how many bytes of
    /// `input` were consumed and whether the line is now complete; `too_long` is
    /// returned if the line would exceed `limit`.
    fn take(
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
    fn line(&self) -> &[u8] {
        self.buf.strip_suffix(b"\r").unwrap_or(&self.buf)
    }

    fn clear(&mut self) {
        self.buf.clear();
    }
}

fn expect(got: u8, want: u8, next: ChunkState) -> Result<ChunkState, HttpError> {
    if got == want {
        Ok(next)
    } else {
        Err(HttpError::BadChunk)
    }
}

/// Parses `1*HEXDIG [ BWS ";" chunk-ext ]` (the line ending already removed).
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::BadChunk);
    }
    let mut size = 0u64;
    for &d in &line[..digits] {
        let d = char::from(d).to_digit(16).ok_or(HttpError::BadChunk)?;
        if size > u64::MAX >> 4 {
            return Err(HttpError::ChunkTooLarge);
        }
        size = size << 4 | u64::from(d);
    }
    check_extensions(&line[digits..])?;
    Ok(size)
}

/// Chunk extensions are ignored, but must look like `;name[=value]` lists so
/// that garbage after a size is not silently taken for a valid chunk.
fn check_extensions(ext: &[u8]) -> Result<(), HttpError> {
    let ext = ext.trim_ascii_start();
    if ext.is_empty() {
        return Ok(());
    }
    let body = ext.strip_prefix(b";").ok_or(HttpError::BadChunk)?;
    let name = body.trim_ascii_start();
    let legal = |b: &u8| *b == b'\t' || *b == b' ' || b.is_ascii_graphic() || *b >= 0x80;
    if name.first().is_some_and(|&b| is_tchar(b)) && body.iter().all(legal) {
        Ok(())
    } else {
        Err(HttpError::BadChunk)
    }
}

/// Token characters (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{MAX_BLOCK, MAX_FIELDS};

    fn decode(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut out = Vec::new();
        let mut c = Chunked::new();
        let used = c.feed(input, &mut |b| out.extend_from_slice(b))?;
        Ok((out, used, c.is_done()))
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"0"), Ok(0));
        assert_eq!(parse_chunk_size(b"1aF"), Ok(0x1af));
        assert_eq!(parse_chunk_size(b"0010"), Ok(16));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(parse_chunk_size(b"00000000000000000000001"), Ok(1));
        assert_eq!(parse_chunk_size(b"5;name=value;x=\"q s\""), Ok(5));
        assert_eq!(parse_chunk_size(b"5 ; ext"), Ok(5));
        assert_eq!(
            parse_chunk_size(b"10000000000000000"),
            Err(HttpError::ChunkTooLarge)
        );
        for bad in [
            &b""[..],
            b"x",
            b"-1",
            b"+1",
            b" 5",
            b"5 x",
            b"5;",
            b"5; ",
            b"5;\x00",
            b"0x10",
        ] {
            assert_eq!(parse_chunk_size(bad), Err(HttpError::BadChunk), "{bad:?}");
        }
    }

    #[test]
    fn chunked_decoding() {
        let input = b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\nEXTRA";
        let (body, used, done) = decode(input).unwrap();
        assert_eq!(
            (body.as_slice(), used, done),
            (&b"Wikipedia"[..], input.len() - 5, true)
        );
    }

    #[test]
    fn chunked_errors() {
        assert_eq!(decode(b"4\r\nWikiX\r\n"), Err(HttpError::BadChunk));
        assert_eq!(decode(b"4\r\nWiki\rX"), Err(HttpError::BadChunk));
        assert_eq!(decode(b"g\r\n"), Err(HttpError::BadChunk));
        assert_eq!(
            decode(b"11111111111111111\r\n"),
            Err(HttpError::ChunkTooLarge)
        );
        assert_eq!(
            decode(b"0\r\nbad trailer\r\n\r\n"),
            Err(HttpError::MalformedHeader)
        );
        let long = [b'0'; MAX_CHUNK_LINE + 1];
        assert_eq!(decode(&long), Err(HttpError::BadChunk));
        let (_, _, done) = decode(b"ffffffffffffffff\r\nabc").unwrap();
        assert!(!done);
    }

    #[test]
    fn trailer_limits() {
        let mut flood = Vec::from(&b"0\r\n"[..]);
        for _ in 0..=MAX_FIELDS {
            flood.extend_from_slice(b"T: v\r\n");
        }
        assert_eq!(decode(&flood), Err(HttpError::TooManyHeaders));
        let mut big = Vec::from(&b"0\r\n"[..]);
        for _ in 0..MAX_BLOCK / 2100 + 1 {
            big.extend_from_slice(b"T: ");
            big.extend_from_slice(&[b'v'; 2095]);
            big.extend_from_slice(b"\r\n");
        }
        assert_eq!(decode(&big), Err(HttpError::HeaderTooLarge));
    }

    /// The trailer section goes through `httparse::parse_headers`: any split, the
    /// limits, bad fields; the bytes after it are not the body's.
    #[test]
    fn trailers_through_parse_headers() {
        let input = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Check: 1\nEmpty:\r\n\r\nafter";
        let body_end = input.len() - b"after".len();
        for i in 0..=input.len() {
            let mut c = Chunked::new();
            let mut out = Vec::new();
            let first = c.feed(&input[..i], &mut |b| out.extend_from_slice(b));
            let second = c.feed(&input[i..], &mut |b| out.extend_from_slice(b));
            assert_eq!(first.unwrap() + second.unwrap(), body_end, "split at {i}");
            assert!(c.is_done());
            assert_eq!(out, b"abc");
        }
        let fields = |n: usize| b"T: v\r\n".repeat(n);
        let hundred = [&b"0\r\n"[..], &fields(MAX_FIELDS), b"\r\n"].concat();
        assert_eq!(decode(&hundred), Ok((Vec::new(), hundred.len(), true)));
        let more = [&b"0\r\n"[..], &fields(MAX_FIELDS + 1), b"\r\n"].concat();
        assert_eq!(decode(&more), Err(HttpError::TooManyHeaders));
        // A trailer section of exactly MAX_BLOCK bytes, and one more.
        for (len, want) in [(MAX_BLOCK, true), (MAX_BLOCK + 1, false)] {
            let mut input = Vec::from(&b"0\r\n"[..]);
            while input.len() - 3 + 2 < len {
                let value = (len - 2 - (input.len() - 3)).saturating_sub(5).min(4000);
                input.extend_from_slice(b"T: ");
                input.extend(core::iter::repeat_n(b'v', value));
                input.extend_from_slice(b"\r\n");
            }
            input.extend_from_slice(b"\r\n");
            assert_eq!(input.len() - 3, len);
            let got = decode(&input);
            if want {
                assert_eq!(got, Ok((Vec::new(), input.len(), true)));
            } else {
                assert_eq!(got, Err(HttpError::HeaderTooLarge));
            }
        }
        for bad in [
            &b"0\r\nT : v\r\n\r\n"[..],
            b"0\r\nT: a\x01b\r\n\r\n",
            // parse_headers takes no obs-fold (heads do, see head.rs); trailers are
            // dropped anyway.
            b"0\r\nT: a\r\n folded\r\n\r\n",
        ] {
            assert_eq!(decode(bad), Err(HttpError::MalformedHeader), "{bad:?}");
        }
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
