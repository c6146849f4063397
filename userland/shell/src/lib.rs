//! The shell's command-line grammar: words, quotes, `$?`, `;` and `&`.
//!
//! A line is a list of commands separated by `;` (run in turn) or ended by `&` (run in
//! the background). A command is words separated by blanks. `'...'` quotes literally,
//! `"..."` quotes but still expands `$?` (the last exit status) and `$$` (the shell's
//! pid) and takes `\"` and `\\`; outside quotes `\` takes the next character literally.
//! `#` at the start of a word begins a comment. There are no pipes or redirections:
//! Capstan has no pipe object and no writable file system yet.
//!
//! Parsing is pure and total: any line gives commands or a [`ParseError`] that says
//! what is wrong and where, never a panic (property-tested). Expansion waits until a
//! command runs ([`Command::expand`]), so in `false; echo $?` the `$?` is `false`'s.
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A piece of a word: text, or a variable expanded when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Status,
    Pid,
}

/// One word of a command, unquoted, with its variables still to expand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(Vec<Piece>);

impl Word {
    fn push_char(&mut self, c: char) {
        match self.0.last_mut() {
            Some(Piece::Text(t)) => t.push(c),
            _ => self.0.push(Piece::Text(String::from(c))),
        }
    }

    fn expand(&self, vars: Vars) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Status => out.push_str(&alloc::format!("{}", vars.status)),
                Piece::Pid => out.push_str(&alloc::format!("{}", vars.pid)),
            }
        }
        out
    }
}

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    words: Vec<Word>,
    /// Ended by `&`: run without waiting.
    pub background: bool,
}

impl Command {
    /// The program and its arguments, with `$?` and `$$` as they are now.
    pub fn expand(&self, vars: Vars) -> Vec<String> {
        self.words.iter().map(|w| w.expand(vars)).collect()
    }
}

/// What `$?` and `$$` expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vars {
    /// The last foreground command's exit status.
    pub status: i32,
    /// The shell's pid.
    pub pid: u32,
}

/// Why a line does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// A quote opened at this byte offset never closed.
    UnterminatedQuote {
        /// `'` or `"`.
        quote: char,
        /// Where it opened.
        at: usize,
    },
    /// A `\` ends the line.
    TrailingBackslash,
    /// `;` or `&` with no command before it, at this byte offset.
    EmptyCommand {
        /// The separator.
        separator: char,
        /// Where it is.
        at: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnterminatedQuote { quote, at } => {
                write!(f, "unterminated {quote} opened at column {}", at + 1)
            }
            ParseError::TrailingBackslash => f.write_str("the line ends with a lone \\"),
            ParseError::EmptyCommand { separator, at } => {
                write!(
                    f,
                    "syntax error: no command before '{separator}' at column {}",
                    at + 1
                )
            }
        }
    }
}

struct Parser<'a> {
    commands: Vec<Command>,
    words: Vec<Word>,
    word: Option<Word>,
    chars: core::iter::Peekable<core::str::CharIndices<'a>>,
}

impl Parser<'_> {
    fn push_char(&mut self, c: char) {
        self.word.get_or_insert_with(Word::default).push_char(c);
    }

    fn push_var(&mut self, p: Piece) {
        self.word.get_or_insert_with(Word::default).0.push(p);
    }

    fn end_word(&mut self) {
        if let Some(w) = self.word.take() {
            self.words.push(w);
        }
    }

    fn end_command(&mut self, separator: char, at: usize) -> Result<(), ParseError> {
        self.end_word();
        if self.words.is_empty() {
            return Err(ParseError::EmptyCommand { separator, at });
        }
        self.commands.push(Command {
            words: core::mem::take(&mut self.words),
            background: separator == '&',
        });
        Ok(())
    }

    /// After a `$`: expands `$?` and `$$`; any other `$` is literal.
    fn dollar(&mut self) {
        match self.chars.peek().map(|&(_, c)| c) {
            Some('?') => {
                self.chars.next();
                self.push_var(Piece::Status);
            }
            Some('$') => {
                self.chars.next();
                self.push_var(Piece::Pid);
            }
            _ => self.push_char('$'),
        }
    }

    fn single_quoted(&mut self, at: usize) -> Result<(), ParseError> {
        self.word.get_or_insert_with(Word::default);
        while let Some((_, c)) = self.chars.next() {
            if c == '\'' {
                return Ok(());
            }
            self.push_char(c);
        }
        Err(ParseError::UnterminatedQuote { quote: '\'', at })
    }

    fn double_quoted(&mut self, at: usize) -> Result<(), ParseError> {
        self.word.get_or_insert_with(Word::default);
        while let Some((_, c)) = self.chars.next() {
            match c {
                '"' => return Ok(()),
                '\\' => match self.chars.peek().map(|&(_, c)| c) {
                    Some(n @ ('"' | '\\' | '$')) => {
                        self.chars.next();
                        self.push_char(n);
                    }
                    _ => self.push_char('\\'),
                },
                '$' => self.dollar(),
                c => self.push_char(c),
            }
        }
        Err(ParseError::UnterminatedQuote { quote: '"', at })
    }

    fn run(mut self) -> Result<Vec<Command>, ParseError> {
        while let Some((at, c)) = self.chars.next() {
            match c {
                c if c.is_whitespace() => self.end_word(),
                '#' if self.word.is_none() => break,
                ';' | '&' => self.end_command(c, at)?,
                '\'' => self.single_quoted(at)?,
                '"' => self.double_quoted(at)?,
                '\\' => match self.chars.next() {
                    Some((_, n)) => self.push_char(n),
                    None => return Err(ParseError::TrailingBackslash),
                },
                '$' => self.dollar(),
                c => self.push_char(c),
            }
        }
        self.end_word();
        if !self.words.is_empty() {
            self.commands.push(Command {
                words: self.words,
                background: false,
            });
        }
        Ok(self.commands)
    }
}

/// Parses one line into its commands (none for a blank or comment line).
pub fn parse(line: &str) -> Result<Vec<Command>, ParseError> {
    Parser {
        commands: Vec::new(),
        words: Vec::new(),
        word: None,
        chars: line.char_indices().peekable(),
    }
    .run()
}

/// The path a command word names: itself if it has a `/`, else `/bin/WORD`.
pub fn program_path(word: &str) -> String {
    if word.contains('/') {
        String::from(word)
    } else {
        alloc::format!("/bin/{word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    const VARS: Vars = Vars { status: 3, pid: 9 };

    fn words(line: &str) -> Vec<Vec<String>> {
        parse(line)
            .unwrap()
            .into_iter()
            .map(|c| c.expand(VARS))
            .collect()
    }

    fn cmds(line: &str) -> Vec<(Vec<String>, bool)> {
        parse(line)
            .unwrap()
            .into_iter()
            .map(|c| (c.expand(VARS), c.background))
            .collect()
    }

    fn cmd(ws: &[&str], background: bool) -> (Vec<String>, bool) {
        (ws.iter().map(|w| String::from(*w)).collect(), background)
    }

    #[test]
    fn words_split_on_blanks() {
        assert_eq!(
            words("  ping  -c 3\t10.0.2.2 "),
            [["ping", "-c", "3", "10.0.2.2"]]
        );
        assert!(words("").is_empty());
        assert!(words("   # only a comment").is_empty());
        assert_eq!(words("echo a#b # c"), [["echo", "a#b"]]);
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r#"echo 'a  b' "c $? d" e\ f"#),
            [["echo", "a  b", "c 3 d", "e f"]]
        );
        assert_eq!(
            words(r#"echo "\"q\" \\ \n" '$?'"#),
            [["echo", "\"q\" \\ \\n", "$?"]]
        );
        assert_eq!(words("echo '' \"\""), [["echo", "", ""]]);
        assert_eq!(words("echo $? $$ $x $"), [["echo", "3", "9", "$x", "$"]]);
        assert_eq!(words("a'b'\"c\"d"), [["abcd"]]);
    }

    #[test]
    fn separators_make_commands() {
        assert_eq!(
            cmds("sleep 5 & echo hi; true&"),
            vec![
                cmd(&["sleep", "5"], true),
                cmd(&["echo", "hi"], false),
                cmd(&["true"], true)
            ]
        );
        assert_eq!(
            cmds("echo ';' \"&\""),
            vec![cmd(&["echo", ";", "&"], false)]
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(
            parse("echo 'abc"),
            Err(ParseError::UnterminatedQuote { quote: '\'', at: 5 })
        );
        assert_eq!(
            parse("echo \"abc"),
            Err(ParseError::UnterminatedQuote { quote: '"', at: 5 })
        );
        assert_eq!(parse("echo \\"), Err(ParseError::TrailingBackslash));
        assert_eq!(
            parse("ls ;; ls"),
            Err(ParseError::EmptyCommand {
                separator: ';',
                at: 4
            })
        );
        assert_eq!(
            parse("& ls"),
            Err(ParseError::EmptyCommand {
                separator: '&',
                at: 0
            })
        );
        assert_eq!(
            std::format!("{}", parse("x 'y").unwrap_err()),
            "unterminated ' opened at column 3"
        );
    }

    #[test]
    fn variables_expand_when_the_command_runs() {
        let line = parse("false; echo $? \"($?)\"").unwrap();
        let later = Vars { status: 1, pid: 9 };
        assert_eq!(line[1].expand(later), ["echo", "1", "(1)"]);
        assert_eq!(line[1].expand(VARS), ["echo", "3", "(3)"]);
    }

    #[test]
    fn program_paths() {
        assert_eq!(program_path("ls"), "/bin/ls");
        assert_eq!(program_path("/bin/ls"), "/bin/ls");
        assert_eq!(program_path("./x"), "./x");
    }

    proptest! {
        #[test]
        fn any_line_parses_or_fails_cleanly(line in "\\PC{0,300}") {
            if let Ok(commands) = parse(&line) {
                for c in commands {
                    prop_assert!(!c.expand(VARS).is_empty());
                }
            }
        }

        #[test]
        fn quoted_words_round_trip(ws in proptest::collection::vec("[^']{0,20}", 1..6)) {
            let line: String = ws.iter().map(|w| std::format!("'{w}' ")).collect();
            prop_assert_eq!(words(&line), vec![ws]);
        }
    }
}
