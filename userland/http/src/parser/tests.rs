//! Tests of the response parser: every split, truncation, hostile heads and bodies.
//!
//! The parser is fed whatever TCP hands over, so most cases check that the outcome
//! (body, head, error) does not depend on where the input is cut, and that malformed
//! or oversized input is refused with its own error within the limits.

use super::*;
use crate::head::{MAX_LINE, Version};
use crate::{BodyDigest, RedirectPolicy, Sha256Digest, Url};
use alloc::format;
use alloc::vec::Vec;

/// Outcome of a whole exchange: `finish` is called if no `feed` failed.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<(), HttpError>,
    body: Vec<u8>,
    status: Option<u16>,
}

fn run(pieces: &[&[u8]]) -> Outcome {
    let (head, body, result) = head_and_body(pieces);
    Outcome {
        result,
        body,
        status: head.as_ref().map(Head::status),
    }
}

fn whole(input: &[u8]) -> Outcome {
    run(&[input])
}

const CL: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\ncontent-type: text/plain\r\n\r\nhello world";
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n\
    4;x=y\r\nWiki\r\n5\r\npedia\r\nE ; name=\"q s\"\r\n in\r\n\r\nchunks.\r\n\
    0\r\nExpires: never\r\nX-Check: 1\r\n\r\n";
const CHUNKED_BODY: &[u8] = b"Wikipedia in\r\n\r\nchunks.";

/// Every split into two and into three pieces, and byte by byte.
fn assert_split_invariant(input: &[u8], want: &Outcome) {
    for i in 0..=input.len() {
        assert_eq!(&run(&[&input[..i], &input[i..]]), want, "split at {i}");
        for j in i..=input.len() {
            let three = run(&[&input[..i], &input[i..j], &input[j..]]);
            assert_eq!(&three, want, "split at {i}, {j}");
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(&run(&bytes), want, "byte by byte");
}

#[test]
fn content_length_every_split() {
    let want = Outcome {
        result: Ok(()),
        body: b"hello world".to_vec(),
        status: Some(200),
    };
    assert_eq!(whole(CL), want);
    assert_split_invariant(CL, &want);
}

#[test]
fn chunked_every_split() {
    let want = Outcome {
        result: Ok(()),
        body: CHUNKED_BODY.to_vec(),
        status: Some(200),
    };
    assert_eq!(whole(CHUNKED), want);
    assert_split_invariant(CHUNKED, &want);
}

#[test]
fn progress_and_accessors() {
    let mut p = ResponseParser::new();
    let (head, body) = CL.split_at(CL.len() - 11);
    assert_eq!(p.feed(head, &mut |_| {}), Ok(Progress::NeedMore));
    let h = p.head().unwrap();
    assert_eq!(
        (h.version(), h.status(), h.reason()),
        (Version::Http11, 200, "OK")
    );
    assert_eq!(h.header("Content-Type"), Some(&b"text/plain"[..]));
    assert_eq!(p.framing(), Some(Framing::Length(11)));
    assert_eq!(p.feed(body, &mut |_| {}), Ok(Progress::Done));
    assert_eq!(p.feed(b"", &mut |_| {}), Ok(Progress::Done));
    assert_eq!(p.finish(), Ok(()));
    assert_eq!(
        p.feed(b"xy", &mut |_| panic!("not body")),
        Ok(Progress::Done)
    );
    assert_eq!((p.excess(), p.body_len()), (2, 11));
    assert_eq!(p.finish(), Ok(()));
    // Errors are sticky.
    let mut bad = ResponseParser::new();
    assert_eq!(
        bad.feed(b"HTTX/9.9 banana\r\n", &mut |_| {}),
        Err(HttpError::MalformedStatusLine)
    );
    assert_eq!(
        bad.feed(b"", &mut |_| {}),
        Err(HttpError::MalformedStatusLine)
    );
    assert_eq!(bad.finish(), Err(HttpError::MalformedStatusLine));
}

#[test]
fn truncated_at_every_length() {
    for (input, head_end) in [(CL, CL.len() - 11), (CHUNKED, 47)] {
        assert!(input[..head_end].ends_with(b"\r\n\r\n"));
        for len in 0..input.len() {
            let want = if len < head_end {
                HttpError::TruncatedHead
            } else {
                HttpError::TruncatedBody
            };
            assert_eq!(whole(&input[..len]).result, Err(want), "length {len}");
        }
    }
}

#[test]
fn read_until_close() {
    let input = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall of this";
    let want = Outcome {
        result: Ok(()),
        body: b"all of this".to_vec(),
        status: Some(200),
    };
    assert_split_invariant(input, &want);
    assert_eq!(whole(&input[..30]).result, Ok(()));
    assert_eq!(whole(&input[..29]).result, Err(HttpError::TruncatedHead));
}

#[test]
fn bodiless_statuses_and_interim() {
    let no_body = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        whole(no_body),
        Outcome {
            result: Ok(()),
            body: Vec::new(),
            status: Some(204)
        }
    );
    let mut p = ResponseParser::new();
    assert_eq!(
        p.feed(b"HTTP/1.1 304 Not Modified\r\n\r\n", &mut |_| {}),
        Ok(Progress::Done)
    );
    assert_eq!(
        whole(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").result,
        Ok(())
    );
    let more = [&no_body[..], b"hello"].concat();
    assert_eq!(
        whole(&more).body,
        b"",
        "a 204 has no body, whatever follows"
    );
    let interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n\
                    HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let want = Outcome {
        result: Ok(()),
        body: b"ok".to_vec(),
        status: Some(200),
    };
    assert_split_invariant(interim, &want);
}

fn error_of(head: &str, rest: &[u8]) -> Result<(), HttpError> {
    whole(&[head.as_bytes(), rest].concat()).result
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_and_the_rest_reported() {
    // The issue's case: Content-Length 100, then 4096 bytes.
    let body: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    let wire = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..],
        &body,
    ]
    .concat();
    for split in [40, 139, 140, 141, 1000, wire.len()] {
        let mut p = ResponseParser::new();
        let mut got = Vec::new();
        let mut progress = Progress::NeedMore;
        for piece in [&wire[..split], &wire[split..]] {
            progress = p.feed(piece, &mut |b| got.extend_from_slice(b)).unwrap();
        }
        assert_eq!(progress, Progress::Done);
        assert_eq!(got, &body[..100], "split at {split}");
        assert_eq!(p.excess(), 4096 - 100);
        assert_eq!(p.finish(), Ok(()));
    }
}

#[test]
fn framing_errors() {
    use HttpError::*;
    let cases: &[(&str, &[u8], Result<(), HttpError>)] = &[
        (
            "Content-Length: 5\r\nContent-Length: 6",
            b"hello",
            Err(BadContentLength),
        ),
        ("Content-Length: 5\r\ncontent-length: 5", b"hello", Ok(())),
        ("Content-Length: 5, 5", b"hello", Ok(())),
        ("Content-Length: 5, 6", b"hello", Err(BadContentLength)),
        ("Content-Length: 5,", b"hello", Err(BadContentLength)),
        ("Content-Length: -1", b"", Err(BadContentLength)),
        ("Content-Length: +5", b"hello", Err(BadContentLength)),
        ("Content-Length: 0x5", b"hello", Err(BadContentLength)),
        ("Content-Length:", b"", Err(BadContentLength)),
        (
            "Content-Length: 99999999999999999999",
            b"",
            Err(BadContentLength),
        ),
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            b"0\r\n\r\n",
            Err(AmbiguousFraming),
        ),
        (
            "Transfer-Encoding: gzip",
            b"",
            Err(UnsupportedTransferEncoding),
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            b"",
            Err(UnsupportedTransferEncoding),
        ),
        (
            "Transfer-Encoding: chunked, chunked",
            b"",
            Err(UnsupportedTransferEncoding),
        ),
        ("Transfer-Encoding: chunked", b"zz\r\n", Err(BadChunk)),
        (
            "Transfer-Encoding: chunked",
            b"3\r\nabcX\r\n",
            Err(BadChunk),
        ),
        (
            "Transfer-Encoding: chunked",
            b"3\r\nabc\r\n0\r\n\r\nx",
            Ok(()),
        ),
        (
            "Transfer-Encoding: chunked",
            b"1ffffffffffffffff\r\n",
            Err(ChunkTooLarge),
        ),
        (
            "Transfer-Encoding: chunked",
            b"ffffffffffffffff\r\nabc",
            Err(TruncatedBody),
        ),
        (
            "Transfer-Encoding:\r\nTransfer-Encoding: chunked",
            b"0\r\n\r\n",
            Ok(()),
        ),
        ("Content-Length: 2", b"okay", Ok(())),
        (
            "Content-Encoding: gzip\r\nContent-Length: 2",
            b"\x1f\x8b",
            Err(UnsupportedContentEncoding(crate::ContentCoding::Gzip)),
        ),
        (
            "Content-Encoding: identity, deflate",
            b"",
            Err(UnsupportedContentEncoding(crate::ContentCoding::Deflate)),
        ),
        (
            "Content-Encoding: identity\r\nContent-Length: 2",
            b"ok",
            Ok(()),
        ),
        ("Bad Header: x", b"", Err(MalformedHeader)),
        ("Bad\x00: x", b"", Err(MalformedHeader)),
    ];
    for (fields, body, want) in cases {
        let head = format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\n");
        assert_eq!(error_of(&head, body), *want, "{fields:?}");
    }
    let v10 = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(error_of(v10, b"0\r\n\r\n"), Err(AmbiguousFraming));
}

#[test]
fn malformed_status_lines() {
    for bad in [
        &b"\r\nHTTP/1.1 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/3 200 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"<html><body>hello</body></html>\n",
        b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n",
        b"\x00\x00\x00\x00\n",
    ] {
        assert_eq!(
            whole(bad).result,
            Err(HttpError::MalformedStatusLine),
            "{bad:?}"
        );
    }
}

#[test]
fn header_floods() {
    let mut many = Vec::from(&b"HTTP/1.1 200 OK\r\n"[..]);
    for i in 0..=MAX_FIELDS_FOR_TEST {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    // The end of the head: with obs-fold allowed, httparse ends a field line only
    // when it sees that the next one does not continue it.
    many.extend_from_slice(b"\r\n");
    assert_eq!(whole(&many).result, Err(HttpError::TooManyHeaders));
    let long_line = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; MAX_LINE], b"\r\n"].concat();
    assert_eq!(whole(&long_line).result, Err(HttpError::HeaderTooLarge));
    let mut big = Vec::from(&b"HTTP/1.1 200 OK\r\n"[..]);
    for _ in 0..3 {
        big.extend_from_slice(&[&b"X: "[..], &[b'a'; 6000], b"\r\n"].concat());
    }
    assert_eq!(whole(&big).result, Err(HttpError::HeaderTooLarge));
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(1000);
    assert_eq!(whole(&interim).result, Err(HttpError::HeaderTooLarge));
    // A server that never sends LF: refused within the limit, not buffered forever.
    // Junk is refused at its first byte (httparse checks the version as it comes);
    // a status line that never ends, at the line limit.
    let junk = [b'a'; 1024];
    for (start, want) in [
        (&b""[..], HttpError::MalformedStatusLine),
        (b"HTTP/1.1 200 ", HttpError::HeaderTooLarge),
    ] {
        let mut p = ResponseParser::new();
        assert_eq!(p.feed(start, &mut |_| {}), Ok(Progress::NeedMore));
        let fed = (0..1024)
            .take_while(|_| p.feed(&junk, &mut |_| {}).is_ok())
            .count();
        assert!(fed < 16, "{fed} KiB accepted");
        assert_eq!(p.finish(), Err(want));
    }
}

const MAX_FIELDS_FOR_TEST: usize = super::super::head::MAX_FIELDS;

/// Feeds `pieces` and returns the head (`None` if none completed), the body and
/// the first error (of `feed` or `finish`).
fn head_and_body(pieces: &[&[u8]]) -> (Option<Head>, Vec<u8>, Result<(), HttpError>) {
    let mut parser = ResponseParser::new();
    let mut body = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        if let Err(e) = parser.feed(piece, &mut |b| body.extend_from_slice(b)) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = parser.finish();
    }
    assert_eq!(parser.body_len(), body.len() as u64);
    (parser.head().cloned(), body, result)
}

/// A head with an interim response, a folded field, repeated fields and body
/// bytes after it, split at every byte position: the same head and body.
#[test]
fn heads_split_at_every_byte() {
    let wire: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 200 Fine Thanks\r\nContent-Length: 5\r\nX-Fold: a\r\n\t b\r\n\
        Set-Cookie: 1\r\nset-cookie: 2\nX-Empty:\r\n\r\nhello";
    let want = head_and_body(&[wire]);
    let head = want.0.clone().unwrap();
    assert_eq!((head.status(), head.reason()), (200, "Fine Thanks"));
    assert_eq!(head.header("x-fold"), Some(&b"a b"[..]));
    assert_eq!(head.header("link"), None, "the interim head is dropped");
    assert_eq!(
        head.headers("Set-Cookie").collect::<Vec<_>>(),
        [&b"1"[..], b"2"]
    );
    assert_eq!(head.header("x-empty"), Some(&b""[..]));
    assert_eq!((&want.1[..], want.2), (&b"hello"[..], Ok(())));
    for i in 0..=wire.len() {
        assert_eq!(
            head_and_body(&[&wire[..i], &wire[i..]]),
            want,
            "split at {i}"
        );
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(head_and_body(&bytes), want, "byte by byte");
}

/// A head of `len` bytes ending in `\r\n\r\n`, with lines under `MAX_LINE`.
fn head_of_len(status_line: &str, len: usize) -> Vec<u8> {
    let mut head = Vec::from(status_line.as_bytes());
    head.extend_from_slice(b"\r\nContent-Length: 2\r\n");
    while head.len() + 2 < len {
        let value = (len - 2 - head.len()).saturating_sub(5).min(4000);
        head.extend_from_slice(b"X: ");
        head.extend(core::iter::repeat_n(b'v', value));
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    assert_eq!(head.len(), len);
    head
}

#[test]
fn heads_at_and_over_the_block_limit() {
    use crate::head::MAX_BLOCK;
    let interim: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    for (before, len) in [(&b""[..], MAX_BLOCK), (interim, MAX_BLOCK - interim.len())] {
        let at = [before, &head_of_len("HTTP/1.1 200 OK", len), b"ok"].concat();
        let over = [before, &head_of_len("HTTP/1.1 200 OK", len + 1), b"ok"].concat();
        for size in [97, 1460, at.len()] {
            let pieces: Vec<&[u8]> = at.chunks(size).collect();
            let (head, body, result) = head_and_body(&pieces);
            assert_eq!(head.map(|h| h.status()), Some(200));
            assert_eq!(
                (&body[..], result),
                (&b"ok"[..], Ok(())),
                "pieces of {size}"
            );
            let pieces: Vec<&[u8]> = over.chunks(size).collect();
            let (head, _, result) = head_and_body(&pieces);
            assert_eq!((head, result), (None, Err(HttpError::HeaderTooLarge)));
        }
    }
}

#[test]
fn a_hundred_fields_and_one_more() {
    for (count, want) in [
        (MAX_FIELDS_FOR_TEST, Ok(())),
        (MAX_FIELDS_FOR_TEST + 1, Err(HttpError::TooManyHeaders)),
    ] {
        let mut wire = Vec::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"[..]);
        for i in 1..count {
            wire.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\nok");
        for size in [1, 10, wire.len()] {
            let pieces: Vec<&[u8]> = wire.chunks(size).collect();
            let (head, body, result) = head_and_body(&pieces);
            assert_eq!(result, want, "{count} fields in pieces of {size}");
            if want.is_ok() {
                assert_eq!(head.unwrap().headers("x-99").count(), 1);
                assert_eq!(body, b"ok");
            }
        }
    }
}

/// Deterministic xorshift64* so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Splits `input` at random points into 1..=8 pieces.
fn random_pieces<'a>(rng: &mut Rng, input: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = (0..rng.below(8))
        .map(|_| rng.below(input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces
}

const FRAGMENTS: &[&[u8]] = &[
    b"HTTP/1.1 ",
    b"HTTP/1.0 ",
    b"200 OK",
    b"100 Continue",
    b"204 ",
    b"302 Found",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b": ",
    b"Content-Length: ",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Location: /x\r\n",
    b"0",
    b"5",
    b"ff",
    b"ffffffffffffffffff",
    b";ext=1",
    b"hello",
    b" ",
    b"\t",
    b",",
    b"\x00",
    b"\xff",
];

fn soup(rng: &mut Rng) -> Vec<u8> {
    let mut input = Vec::new();
    if rng.below(2) == 0 {
        input.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    }
    for _ in 0..rng.below(40) {
        if rng.below(3) == 0 {
            input.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8));
        } else {
            input.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
    }
    input
}

/// 10 000 random byte soups: no panic, and the outcome (error or body) does
/// not depend on how the input is split into segments.
#[test]
fn fuzz_split_invariance() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut oks = 0;
    for case in 0..10_000 {
        let input = soup(&mut rng);
        let want = whole(&input);
        let pieces = random_pieces(&mut rng, &input);
        assert_eq!(run(&pieces), want, "case {case}: {input:?} as {pieces:?}");
        oks += usize::from(want.result.is_ok());
    }
    // The fragments must reach the body states, not just the error paths.
    assert!(oks > 100, "only {oks} soups parsed");
}

/// 1 MiB of pseudo-random data in random chunk sizes and TCP-like segments:
/// the streamed digest matches the data's.
#[test]
fn chunked_download_digest() {
    let mut rng = Rng(42);
    let data: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    let mut wire = Vec::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
    let mut rest = &data[..];
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(1 + rng.below(40_000)));
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
        rest = tail;
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut parser = ResponseParser::new();
    let mut digest = BodyDigest::new();
    let mut progress = Progress::NeedMore;
    for segment in wire.chunks(1460) {
        progress = parser.feed(segment, &mut |b| digest.update(b)).unwrap();
    }
    assert_eq!(progress, Progress::Done);
    assert_eq!(parser.finish(), Ok(()));
    assert_eq!(digest.finish(), (1 << 20, Sha256Digest::of(&data)));
}

#[test]
fn redirect_from_parsed_head() {
    let input = b"HTTP/1.1 301 Moved\r\nLocation: ../other?x\r\nContent-Length: 0\r\n\r\n";
    let mut parser = ResponseParser::new();
    assert_eq!(parser.feed(input, &mut |_| {}), Ok(Progress::Done));
    let head = parser.head().unwrap();
    assert_eq!(head.status(), 301);
    assert_eq!(head.header("location"), Some(&b"../other?x"[..]));
    let here = Url::parse("http://lab.test/a/b/c").unwrap();
    let next = RedirectPolicy::default()
        .next(&here, head)
        .unwrap()
        .unwrap();
    assert_eq!(next, Url::parse("http://lab.test/a/other?x").unwrap());
}
