//! A line editor for a serial console: bytes in, terminal output and finished lines out.
//!
//! [`Editor::feed`] takes one byte of typed input at a time and appends what the terminal
//! should show to an output buffer (echo, cursor moves, redraws as ANSI/VT100 sequences),
//! returning an [`Event`] when a line is done, Ctrl-C or Ctrl-D was typed, or a line was
//! too long. It never asks the terminal anything (no cursor-position reports), so it
//! works the same behind a real terminal, a pipe or a test script, and it has no state
//! that unexpected input can break: unknown control bytes are counted and ignored,
//! escape sequences are bounded, invalid UTF-8 is dropped, and a line past its limit
//! is refused whole at Enter instead of being cut (a 64 KiB paste costs a bell, not
//! memory).
//!
//! Keys: printable text and UTF-8; Enter (CR, LF or CR LF); Backspace (DEL or BS);
//! Left/Right, Home/End (CSI and SS3 forms, Ctrl-A/E/B/F); Delete (CSI 3~); Up/Down and
//! Ctrl-P/N walk the history; Ctrl-U/K cut to the start/end, Ctrl-W the word before the
//! cursor; Ctrl-L redraws; Ctrl-C abandons the line; Ctrl-D ends input on an empty line
//! and deletes under the cursor otherwise.
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// What a byte of input finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Enter: the line (also added to the history if non-empty and new).
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupt,
    /// Ctrl-D on an empty line: no more input.
    Eof,
    /// Enter on a line that outgrew the limit: it is refused whole.
    TooLong {
        /// Bytes typed on the line, counting those refused.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Figures a shell may report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Control bytes and escape sequences the editor does not know (ignored).
    pub ignored: u64,
    /// Bytes that were not valid UTF-8 (dropped).
    pub invalid_utf8: u64,
    /// Lines refused for their length.
    pub too_long: u64,
}

/// Longest escape sequence kept before it is abandoned as garbage.
const MAX_ESCAPE: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Normal,
    /// After ESC.
    Escape,
    /// Inside `ESC [` (parameters so far) or `ESC O`.
    Csi(heapless_params::Params),
    Ss3,
}

mod heapless_params {
    /// The parameter bytes of a CSI sequence, bounded.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Params {
        bytes: [u8; super::MAX_ESCAPE],
        len: usize,
    }

    impl Params {
        /// Appends a byte; false once full.
        pub fn push(&mut self, b: u8) -> bool {
            if self.len == self.bytes.len() {
                return false;
            }
            self.bytes[self.len] = b;
            self.len += 1;
            true
        }

        /// The bytes.
        pub fn as_bytes(&self) -> &[u8] {
            &self.bytes[..self.len]
        }
    }
}

/// The editor: the line being typed, the cursor, the history.
pub struct Editor {
    prompt: String,
    line: Vec<char>,
    /// Cursor position in chars.
    cursor: usize,
    /// Bytes typed past `max` on this line (refused at Enter).
    overflow: usize,
    max: usize,
    history: VecDeque<String>,
    max_history: usize,
    /// Position while walking the history, and the line being typed before the walk.
    browsing: Option<(usize, Vec<char>)>,
    input: Input,
    utf8: [u8; 4],
    utf8_len: usize,
    last_was_cr: bool,
    stats: Stats,
}

impl Editor {
    /// An editor taking lines of at most `max_line` bytes and remembering
    /// `max_history` lines.
    pub fn new(max_line: usize, max_history: usize) -> Editor {
        Editor {
            prompt: String::new(),
            line: Vec::new(),
            cursor: 0,
            overflow: 0,
            max: max_line,
            history: VecDeque::new(),
            max_history,
            browsing: None,
            input: Input::Normal,
            utf8: [0; 4],
            utf8_len: 0,
            last_was_cr: false,
            stats: Stats::default(),
        }
    }

    /// Starts a new line: prints `prompt` and forgets any half-typed line.
    pub fn start(&mut self, prompt: &str, out: &mut Vec<u8>) {
        self.prompt = String::from(prompt);
        self.reset_line();
        out.extend_from_slice(prompt.as_bytes());
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// The figures so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The line as typed so far.
    pub fn current(&self) -> String {
        self.line.iter().collect()
    }

    fn reset_line(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.overflow = 0;
        self.browsing = None;
        self.input = Input::Normal;
        self.utf8_len = 0;
    }

    fn byte_len(&self) -> usize {
        self.line.iter().map(|c| c.len_utf8()).sum()
    }

    /// Takes one byte of input; appends terminal output to `out`.
    pub fn feed(&mut self, byte: u8, out: &mut Vec<u8>) -> Option<Event> {
        let after_cr = core::mem::replace(&mut self.last_was_cr, byte == b'\r');
        match core::mem::replace(&mut self.input, Input::Normal) {
            Input::Normal => {}
            Input::Escape => {
                match byte {
                    b'[' => self.input = Input::Csi(Default::default()),
                    b'O' => self.input = Input::Ss3,
                    _ => self.stats.ignored += 1,
                }
                return None;
            }
            Input::Csi(mut params) => {
                if (0x40..=0x7e).contains(&byte) {
                    self.csi(params.as_bytes(), byte, out);
                } else if (0x20..0x40).contains(&byte) && params.push(byte) {
                    self.input = Input::Csi(params);
                } else {
                    self.stats.ignored += 1; // garbage or too long: abandoned
                }
                return None;
            }
            Input::Ss3 => {
                match byte {
                    b'H' => self.home(out),
                    b'F' => self.end(out),
                    b'A' => self.history_up(out),
                    b'B' => self.history_down(out),
                    b'C' => self.right(out),
                    b'D' => self.left(out),
                    _ => self.stats.ignored += 1,
                }
                return None;
            }
        }
        if self.utf8_len > 0 || byte >= 0x80 {
            return self.utf8_byte(byte, out);
        }
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => Some(self.enter(out)),
            0x03 => {
                out.extend_from_slice(b"^C\r\n");
                self.reset_line();
                Some(Event::Interrupt)
            }
            0x04 if self.line.is_empty() => {
                out.extend_from_slice(b"\r\n");
                Some(Event::Eof)
            }
            0x04 => {
                self.delete(out);
                None
            }
            0x7f | 0x08 => {
                self.backspace(out);
                None
            }
            0x1b => {
                self.input = Input::Escape;
                None
            }
            0x01 => {
                self.home(out);
                None
            }
            0x05 => {
                self.end(out);
                None
            }
            0x02 => {
                self.left(out);
                None
            }
            0x06 => {
                self.right(out);
                None
            }
            0x0b | 0x15 if self.refused() => None,
            0x0b => {
                self.line.truncate(self.cursor);
                out.extend_from_slice(b"\x1b[K");
                None
            }
            0x15 => {
                let n = self.cursor;
                self.line.drain(..n);
                self.cursor = 0;
                self.move_left(n, out);
                self.redraw_tail(out);
                None
            }
            0x17 => {
                self.cut_word(out);
                None
            }
            0x0c => {
                out.extend_from_slice(b"\x1b[H\x1b[2J");
                self.redraw_all(out);
                None
            }
            0x10 => {
                self.history_up(out);
                None
            }
            0x0e => {
                self.history_down(out);
                None
            }
            0x20..=0x7e => {
                self.insert(byte as char, out);
                None
            }
            _ => {
                self.stats.ignored += 1;
                None
            }
        }
    }

    fn utf8_byte(&mut self, byte: u8, out: &mut Vec<u8>) -> Option<Event> {
        let want = |first: u8| match first {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        if self.utf8_len == 0 {
            if want(byte) == 0 {
                self.stats.invalid_utf8 += 1;
                return None;
            }
        } else if byte & 0xc0 != 0x80 {
            // The sequence broke off: drop it and read this byte afresh.
            self.stats.invalid_utf8 += self.utf8_len as u64;
            self.utf8_len = 0;
            return self.feed(byte, out);
        }
        self.utf8[self.utf8_len] = byte;
        self.utf8_len += 1;
        if self.utf8_len < want(self.utf8[0]) {
            return None;
        }
        let bytes = self.utf8;
        let len = core::mem::take(&mut self.utf8_len);
        match core::str::from_utf8(&bytes[..len])
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => self.insert(c, out),
            None => self.stats.invalid_utf8 += len as u64,
        }
        None
    }

    fn csi(&mut self, params: &[u8], fin: u8, out: &mut Vec<u8>) {
        match (params, fin) {
            (b"", b'A') => self.history_up(out),
            (b"", b'B') => self.history_down(out),
            (b"", b'C') => self.right(out),
            (b"", b'D') => self.left(out),
            (b"", b'H') | (b"1" | b"7", b'~') => self.home(out),
            (b"", b'F') | (b"4" | b"8", b'~') => self.end(out),
            (b"3", b'~') => self.delete(out),
            _ => self.stats.ignored += 1,
        }
    }

    fn enter(&mut self, out: &mut Vec<u8>) -> Event {
        out.extend_from_slice(b"\r\n");
        let len = self.byte_len() + self.overflow;
        if self.overflow > 0 {
            self.stats.too_long += 1;
            self.reset_line();
            return Event::TooLong { len, max: self.max };
        }
        let line: String = self.line.iter().collect();
        self.reset_line();
        if !line.trim().is_empty() && self.history.back() != Some(&line) {
            if self.history.len() == self.max_history {
                self.history.pop_front();
            }
            if self.max_history > 0 {
                self.history.push_back(line.clone());
            }
        }
        Event::Line(line)
    }

    fn insert(&mut self, c: char, out: &mut Vec<u8>) {
        if self.overflow > 0 || self.byte_len() + c.len_utf8() > self.max {
            if self.overflow == 0 {
                out.push(0x07); // one bell per refused line
            }
            self.overflow += c.len_utf8();
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        if self.cursor < self.line.len() {
            self.redraw_tail(out);
        }
    }

    /// A line past the limit is refused whole: only Enter, Ctrl-C and the history (which
    /// replaces it) change it.
    fn refused(&self) -> bool {
        self.overflow > 0
    }

    fn backspace(&mut self, out: &mut Vec<u8>) {
        if self.cursor == 0 || self.refused() {
            return;
        }
        self.cursor -= 1;
        self.line.remove(self.cursor);
        out.push(0x08);
        self.redraw_tail(out);
    }

    fn delete(&mut self, out: &mut Vec<u8>) {
        if self.cursor < self.line.len() && !self.refused() {
            self.line.remove(self.cursor);
            self.redraw_tail(out);
        }
    }

    fn cut_word(&mut self, out: &mut Vec<u8>) {
        if self.refused() {
            return;
        }
        let mut start = self.cursor;
        while start > 0 && self.line[start - 1] == ' ' {
            start -= 1;
        }
        while start > 0 && self.line[start - 1] != ' ' {
            start -= 1;
        }
        let n = self.cursor - start;
        self.line.drain(start..self.cursor);
        self.cursor = start;
        self.move_left(n, out);
        self.redraw_tail(out);
    }

    fn left(&mut self, out: &mut Vec<u8>) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.move_left(1, out);
        }
    }

    fn right(&mut self, out: &mut Vec<u8>) {
        if self.cursor < self.line.len() {
            let mut buf = [0; 4];
            out.extend_from_slice(self.line[self.cursor].encode_utf8(&mut buf).as_bytes());
            self.cursor += 1;
        }
    }

    fn home(&mut self, out: &mut Vec<u8>) {
        self.move_left(self.cursor, out);
        self.cursor = 0;
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        while self.cursor < self.line.len() {
            self.right(out);
        }
    }

    fn move_left(&self, n: usize, out: &mut Vec<u8>) {
        if n > 0 {
            let _ = write!(Sink(out), "\x1b[{n}D");
        }
    }

    /// Prints the line from the cursor to its end, clears what is left of the old
    /// text, and puts the cursor back.
    fn redraw_tail(&self, out: &mut Vec<u8>) {
        let tail: String = self.line[self.cursor..].iter().collect();
        out.extend_from_slice(tail.as_bytes());
        out.extend_from_slice(b"\x1b[K");
        self.move_left(self.line.len() - self.cursor, out);
    }

    fn redraw_all(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\x1b[K");
        out.extend_from_slice(self.prompt.as_bytes());
        let line: String = self.line.iter().collect();
        out.extend_from_slice(line.as_bytes());
        self.move_left(self.line.len() - self.cursor, out);
    }

    fn replace_line(&mut self, with: Vec<char>, out: &mut Vec<u8>) {
        self.line = with;
        self.cursor = self.line.len();
        self.overflow = 0;
        self.redraw_all(out);
    }

    fn history_up(&mut self, out: &mut Vec<u8>) {
        let pos = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len(), self.line.clone()));
                self.history.len() - 1
            }
            Some((0, _)) => return,
            Some((pos, _)) => pos - 1,
        };
        if let Some((p, _)) = &mut self.browsing {
            *p = pos;
        }
        let entry = self.history[pos].chars().collect();
        self.replace_line(entry, out);
    }

    fn history_down(&mut self, out: &mut Vec<u8>) {
        let Some((pos, saved)) = self.browsing.take() else {
            return;
        };
        if pos + 1 >= self.history.len() {
            self.replace_line(saved, out);
            return;
        }
        self.browsing = Some((pos + 1, saved));
        let entry = self.history[pos + 1].chars().collect();
        self.replace_line(entry, out);
    }
}

struct Sink<'a>(&'a mut Vec<u8>);

impl Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    /// Feeds `input`; returns the events and the output.
    fn run(ed: &mut Editor, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut out = Vec::new();
        let events = input.iter().filter_map(|&b| ed.feed(b, &mut out)).collect();
        (events, out)
    }

    fn line(s: &str) -> Event {
        Event::Line(String::from(s))
    }

    #[test]
    fn typed_text_is_echoed_and_returned_on_enter() {
        let mut ed = Editor::new(64, 8);
        let mut out = Vec::new();
        ed.start("$ ", &mut out);
        assert_eq!(out, b"$ ");
        let (ev, out) = run(&mut ed, b"ls /proc\r");
        assert_eq!(ev, vec![line("ls /proc")]);
        assert_eq!(out, b"ls /proc\r\n");
    }

    #[test]
    fn cr_lf_is_one_enter_and_lf_alone_is_one() {
        let mut ed = Editor::new(64, 8);
        let (ev, _) = run(&mut ed, b"a\r\nb\nc\r\r");
        assert_eq!(ev, vec![line("a"), line("b"), line("c"), line("")]);
    }

    #[test]
    fn editing_keys_change_the_line_where_the_cursor_is() {
        let mut ed = Editor::new(64, 8);
        // "helo", left, insert "l" -> "hello"
        assert_eq!(run(&mut ed, b"helo\x1b[Dl\r").0, vec![line("hello")]);
        // Home, then Delete twice, End, backspace
        assert_eq!(
            run(&mut ed, b"xxabc\x01\x1b[3~\x04\x05\x7f\r").0,
            vec![line("ab")]
        );
        // Ctrl-W cuts the word before the cursor, Ctrl-U to the start, Ctrl-K to the end
        assert_eq!(
            run(&mut ed, b"echo one two\x17\r").0,
            vec![line("echo one ")]
        );
        assert_eq!(run(&mut ed, b"abc def\x02\x02\x15\r").0, vec![line("ef")]);
        assert_eq!(run(&mut ed, b"abc def\x01\x06\x0b\r").0, vec![line("a")]);
        // SS3 Home/End and CSI 1~/4~
        assert_eq!(run(&mut ed, b"bc\x1bOHa\x1bOFd\r").0, vec![line("abcd")]);
        assert_eq!(run(&mut ed, b"bc\x1b[1~a\x1b[4~d\r").0, vec![line("abcd")]);
    }

    #[test]
    fn history_walks_back_and_forth_and_keeps_the_typed_line() {
        let mut ed = Editor::new(64, 8);
        run(&mut ed, b"one\rtwo\rtwo\r\r");
        assert_eq!(ed.history().collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(run(&mut ed, b"\x1b[A\r").0, vec![line("two")]);
        assert_eq!(run(&mut ed, b"\x1b[A\x1b[A\x1b[A\r").0, vec![line("one")]);
        assert_eq!(
            run(&mut ed, b"draft\x10\x10\x0e\x0e\r").0,
            vec![line("draft")]
        );
        assert_eq!(run(&mut ed, b"\x1b[B\r").0, vec![line("")]);
    }

    #[test]
    fn history_is_bounded() {
        let mut ed = Editor::new(64, 3);
        run(&mut ed, b"a\rb\rc\rd\r");
        assert_eq!(ed.history().collect::<Vec<_>>(), ["b", "c", "d"]);
        let mut none = Editor::new(64, 0);
        run(&mut none, b"a\r\x1b[A\r");
        assert_eq!(none.history().count(), 0);
    }

    #[test]
    fn ctrl_c_abandons_and_ctrl_d_ends_only_on_an_empty_line() {
        let mut ed = Editor::new(64, 8);
        let (ev, out) = run(&mut ed, b"half\x03");
        assert_eq!(ev, vec![Event::Interrupt]);
        assert!(out.ends_with(b"^C\r\n"));
        assert_eq!(ed.current(), "");
        assert_eq!(run(&mut ed, b"ab\x01\x04\r").0, vec![line("b")]);
        assert_eq!(run(&mut ed, b"\x04").0, vec![Event::Eof]);
    }

    #[test]
    fn a_huge_paste_is_refused_whole_with_one_bell() {
        let mut ed = Editor::new(1024, 8);
        let mut input = vec![b'x'; 64 * 1024];
        input.push(b'\r');
        let (ev, out) = run(&mut ed, &input);
        assert_eq!(
            ev,
            vec![Event::TooLong {
                len: 64 * 1024,
                max: 1024
            }]
        );
        assert_eq!(out.iter().filter(|&&b| b == 0x07).count(), 1);
        assert!(out.len() < 1100, "echo stops at the limit");
        assert_eq!(ed.stats().too_long, 1);
        assert_eq!(run(&mut ed, b"ok\r").0, vec![line("ok")], "next line fine");
    }

    #[test]
    fn control_bytes_and_unknown_sequences_are_ignored_and_counted() {
        let mut ed = Editor::new(64, 8);
        let (ev, _) = run(&mut ed, b"a\x00\x07\x1f\x1b[99;5Zb\x1bXc\r");
        assert_eq!(ev, vec![line("abc")]);
        assert_eq!(ed.stats().ignored, 5);
        // An endless CSI is abandoned, then typing goes on.
        let mut long = b"\x1b[".to_vec();
        long.extend_from_slice(&[b'1'; 100]);
        long.extend_from_slice(b"z\r");
        // The byte that overflowed the sequence goes with it.
        let mut expect = "1".repeat(100 - MAX_ESCAPE - 1);
        expect.push('z');
        let mut ed = Editor::new(256, 8);
        assert_eq!(run(&mut ed, &long).0, vec![line(&expect)]);
    }

    #[test]
    fn utf8_is_kept_and_invalid_bytes_dropped() {
        let mut ed = Editor::new(64, 8);
        let (ev, _) = run(&mut ed, "héllo ✓\r".as_bytes());
        assert_eq!(ev, vec![line("héllo ✓")]);
        let (ev, _) = run(&mut ed, b"a\xffb\xc3c\xe2\x9c\r");
        assert_eq!(ev, vec![line("abc")]);
        assert_eq!(ed.stats().invalid_utf8, 4);
        // Backspace removes a whole character.
        assert_eq!(run(&mut ed, "é\x7f\r".as_bytes()).0, vec![line("")]);
    }

    proptest! {
        #[test]
        fn any_input_keeps_the_editor_consistent(input in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut ed = Editor::new(100, 4);
            let mut out = Vec::new();
            for b in input {
                match ed.feed(b, &mut out) {
                    Some(Event::Line(l)) => prop_assert!(l.len() <= 100),
                    Some(Event::TooLong { len, max }) => prop_assert!(len > max),
                    _ => {}
                }
                prop_assert!(ed.cursor <= ed.line.len());
                prop_assert!(ed.byte_len() <= 100);
                prop_assert!(ed.history.len() <= 4);
            }
        }
    }
}
