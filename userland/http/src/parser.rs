//! The response state machine: head, then body framed as the head says.
//!
//! `ResponseParser` is fed whatever the TCP socket yields: head bytes are
//! accumulated under the size limits until httparse finds the end of the head
//! (`head.rs`), body bytes go straight to the caller's sink. Every error is
//! sticky, so a glue loop that keeps feeding after a failure keeps getting the
//! same error instead of misparsing the rest of the stream. Bytes after a
//! complete response (a server that sends more than its `Content-Length`) are
//! not body: they are counted as excess for the caller to report, and the
//! caller closes the connection; the response itself stands.

use super::HttpError;
use super::body::{Chunked, Framing};
use super::head::{Block, BlockReader, Head, parse_head};

/// What `feed` achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete yet (the head may be; see `head()`).
    NeedMore,
    /// Head and body are complete; stop reading.
    Done,
}

#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Body),
    Done,
    Failed(HttpError),
}

/// Incremental parser for one HTTP/1.x response to a GET.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// Head bytes, interim (1xx) responses included, against one `MAX_BLOCK`.
    head_block: BlockReader,
    head: Option<Head>,
    framing: Option<Framing>,
    body_len: u64,
    excess: u64,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// A parser waiting for the status line.
    pub fn new() -> Self {
        Self {
            state: State::Head,
            head_block: BlockReader::default(),
            head: None,
            framing: None,
            body_len: 0,
            excess: 0,
        }
    }

    /// The final (non-1xx) response head, once complete.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// The body framing, once the head is complete.
    #[cfg(test)]
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Body bytes handed to sinks so far.
    #[cfg(test)]
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Bytes that arrived after the response was complete (not part of the body).
    pub fn excess(&self) -> u64 {
        self.excess
    }

    /// Parses the next bytes from the connection; body bytes go to `sink`, in
    /// order, possibly in several calls. Bytes after a complete response are counted
    /// in [`ResponseParser::excess`] and otherwise ignored: stop reading at `Done`.
    pub fn feed(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<Progress, HttpError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        let mut delivered = 0u64;
        let result = self.feed_all(input, &mut |piece: &[u8]| {
            delivered += piece.len() as u64;
            sink(piece);
        });
        self.body_len += delivered;
        match result {
            Ok(()) if matches!(self.state, State::Done) => Ok(Progress::Done),
            Ok(()) => Ok(Progress::NeedMore),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    /// Reports the connection's EOF: fine for a body read until close or one
    /// already complete, `TruncatedHead` / `TruncatedBody` otherwise.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        let result = match &self.state {
            State::Failed(e) => Err(*e),
            State::Head => Err(HttpError::TruncatedHead),
            State::Body(Body::UntilClose) | State::Done => Ok(()),
            State::Body(_) => Err(HttpError::TruncatedBody),
        };
        self.state = match result {
            Ok(()) => State::Done,
            Err(e) => State::Failed(e),
        };
        result
    }

    fn feed_all(&mut self, input: &[u8], sink: &mut impl FnMut(&[u8])) -> Result<(), HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            pos += match &mut self.state {
                State::Head => self.head_step(rest)?,
                State::Body(Body::Length(remaining)) => {
                    let n = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    sink(&rest[..n]);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Done;
                    }
                    n
                }
                State::Body(Body::Chunked(chunked)) => {
                    let n = chunked.feed(rest, sink)?;
                    if chunked.is_done() {
                        self.state = State::Done;
                    }
                    n
                }
                State::Body(Body::UntilClose) => {
                    sink(rest);
                    rest.len()
                }
                State::Done => {
                    self.excess += rest.len() as u64;
                    rest.len()
                }
                State::Failed(e) => return Err(*e),
            };
        }
        Ok(())
    }

    /// Consumes head bytes; once the head is complete, acts on it and leaves the
    /// bytes after it.
    fn head_step(&mut self, input: &[u8]) -> Result<usize, HttpError> {
        match self.head_block.feed(input, parse_head)? {
            Block::Partial => Ok(input.len()),
            Block::Complete(head, used) => {
                self.state = self.end_head(head)?;
                Ok(used)
            }
        }
    }

    /// The state after a complete head: an interim 1xx response (RFC 9110 §15.2)
    /// is dropped and the next head awaited, any other decides the body framing.
    fn end_head(&mut self, head: Head) -> Result<State, HttpError> {
        if (100..200).contains(&head.status()) {
            return Ok(State::Head);
        }
        let framing = Framing::of(&head)?;
        self.head = Some(head);
        self.framing = Some(framing);
        Ok(match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Body(Body::Length(n)),
            Framing::Chunked => State::Body(Body::Chunked(Chunked::new())),
            Framing::UntilClose => State::Body(Body::UntilClose),
        })
    }
}

#[cfg(test)]
mod tests;
