//! The kernel command line (`/chosen/bootargs`): options, their ranges, and warnings.
//!
//! A command line is input the kernel does not control (a typo, a script, a hostile
//! boot loader), so parsing never fails and never panics: every known option with a bad
//! value is reported once, naming the option, the value, what is accepted and the safe
//! default used instead; an unknown option is reported and ignored. Later words win, so
//! a script's defaults can be overridden by appending. The values that derive periods
//! (`hz`, `net=poll:N`) are bounded here, so no code downstream divides by zero or turns
//! a tick off by rounding. The table of options is in docs/boot.md.

use core::fmt;

/// Most ticks or polls per second accepted: a 100 µs period.
pub const MAX_HZ: u64 = 10_000;

/// Polls per second for `net=poll` without a rate.
pub const DEFAULT_POLL_HZ: u64 = 100;

/// How the kernel log is filtered (`log=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default: what a person watching the boot wants.
    Info,
    /// Device programming and state changes (PCI, MSI/ITS, lines, rings, DHCP).
    Debug,
    /// Everything, including hot-path events (rate-limited).
    Trace,
}

/// `net=`: whether and how the network stack starts at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOption {
    /// No stack (the default without `net=`).
    Off,
    /// DHCP, receive by interrupt.
    Dhcp,
    /// DHCP, receive polled `hz` times a second (no RX interrupt; for comparisons).
    Poll {
        /// Polls per second, 1..=`MAX_HZ`.
        hz: u64,
    },
}

/// `crash=`: the test harness's self-test (see `ktest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashOption {
    /// Panic inside the first test.
    Panic,
    /// Fault inside the first test.
    Fault,
    /// Hang inside the first test.
    Hang,
}

/// Boot options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootArgs<'a> {
    /// `test` or `test=<filter>`: run the kernel tests matching the filter.
    pub test: Option<&'a str>,
    /// `hz=<n>`: a periodic tick, 1..=`MAX_HZ`; 0 (the default) is tickless.
    pub hz: u64,
    /// `log=<level>`.
    pub log: LogLevel,
    /// `crash=panic|fault|hang`: harness self-test.
    pub crash: Option<CrashOption>,
    /// `pci=nomsi`: PCI devices use INTx even where MSI is available.
    pub pci_no_msi: bool,
    /// `edu=msi|intx|nodma|none`: which edu devices the machine was started with (tests).
    pub edu: Option<&'a str>,
    /// `net=dhcp|poll[:hz]|off`.
    pub net: NetOption,
    /// `probe`: print every platform fact found (docs/parallels-vmware.md).
    pub probe: bool,
    /// `profile=<n>`: sample the interrupted PC `n` times a second on every CPU,
    /// 1..=`MAX_HZ` (docs/profiling.md); 0 (the default) is off.
    pub profile: u64,
    /// `init=/bin/PROGRAM`: process 1 (default `/bin/init`).
    pub init: &'a str,
    /// `monitor`: the kernel monitor on the console instead of process 1 (debugging).
    pub monitor: bool,
    /// Everything after a lone `--`: process 1's arguments, untouched by the kernel.
    pub init_args: &'a str,
}

/// Process 1 when no `init=` says otherwise.
pub const DEFAULT_INIT: &str = "/bin/init";

impl Default for BootArgs<'_> {
    fn default() -> Self {
        BootArgs {
            test: None,
            hz: 0,
            log: LogLevel::Info,
            crash: None,
            pci_no_msi: false,
            edu: None,
            net: NetOption::Off,
            probe: false,
            profile: 0,
            init: DEFAULT_INIT,
            monitor: false,
            init_args: "",
        }
    }
}

/// One option the kernel did not take as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    /// The word as written (`hz=abc`).
    pub word: &'a str,
    /// What went wrong and what was done instead.
    pub problem: Problem,
}

/// Why an option was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A known option with a value outside what it accepts.
    BadValue {
        /// What the option accepts.
        accepted: &'static str,
        /// What is used instead.
        using: &'static str,
    },
    /// An option the kernel does not know.
    Unknown,
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            Problem::BadValue { accepted, using } => write!(
                f,
                "boot option '{}': accepted {accepted}; using {using}",
                self.word
            ),
            Problem::Unknown => write!(f, "boot option '{}' is unknown and ignored", self.word),
        }
    }
}

/// Most warnings kept; more are counted in `ParsedArgs::more_warnings`.
pub const MAX_WARNINGS: usize = 8;

/// Parsed options and what was wrong with the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArgs<'a> {
    /// The options.
    pub args: BootArgs<'a>,
    /// The first `MAX_WARNINGS` problems, in command-line order.
    pub warnings: heapless::Vec<Warning<'a>, MAX_WARNINGS>,
    /// Problems past those.
    pub more_warnings: usize,
}

const HZ_RANGE: &str = "0 (tickless) or 1..=10000 ticks per second";
const POLL_RANGE: &str = "dhcp, off, poll or poll:<1..=10000 polls per second>";

/// Keys tests read themselves from the raw command line (`tests::bridges`, `tests::process`,
/// `tests::udriver`; the user suite reads the lab's file digests from `/proc/cmdline`).
const TEST_KEYS: [&str; 6] = [
    "sha1m",
    "sha16m",
    "bridges",
    "stress_ms",
    "fuzz_calls",
    "kills",
];

impl<'a> BootArgs<'a> {
    /// Parses space-separated options. Never fails: see the module note.
    pub fn parse(line: &'a str) -> ParsedArgs<'a> {
        let mut out = ParsedArgs {
            args: BootArgs::default(),
            warnings: heapless::Vec::new(),
            more_warnings: 0,
        };
        let (kernel, init_args) = split_init_args(line);
        out.args.init_args = init_args;
        for word in kernel.split_whitespace() {
            if let Err(problem) = out.args.apply(word)
                && out.warnings.push(Warning { word, problem }).is_err()
            {
                out.more_warnings += 1;
            }
        }
        out
    }

    fn apply(&mut self, word: &'a str) -> Result<(), Problem> {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        match (key, value) {
            ("test", filter) => self.test = Some(filter.unwrap_or("")),
            ("probe", None) => self.probe = true,
            ("profile", Some(v)) => {
                self.profile = parse_hz(v, false).ok_or(Problem::BadValue {
                    accepted: "1..=10000 samples per second",
                    using: "no profiling",
                })?;
            }
            ("hz", Some(v)) => {
                self.hz = parse_hz(v, true).ok_or(Problem::BadValue {
                    accepted: HZ_RANGE,
                    using: "0 (tickless)",
                })?;
            }
            ("log", Some(v)) => {
                self.log = parse_log(v).ok_or(Problem::BadValue {
                    accepted: "off, error, warn, info, debug or trace",
                    using: "info",
                })?;
            }
            ("crash", Some(v)) => {
                self.crash = Some(match v {
                    "panic" => CrashOption::Panic,
                    "fault" => CrashOption::Fault,
                    "hang" => CrashOption::Hang,
                    _ => {
                        return Err(Problem::BadValue {
                            accepted: "panic, fault or hang",
                            using: "no crash",
                        });
                    }
                });
            }
            ("pci", Some("nomsi")) => self.pci_no_msi = true,
            ("pci", _) => {
                return Err(Problem::BadValue {
                    accepted: "nomsi",
                    using: "MSI where available",
                });
            }
            ("edu", Some(v @ ("msi" | "intx" | "nodma" | "none"))) => self.edu = Some(v),
            ("edu", _) => {
                return Err(Problem::BadValue {
                    accepted: "msi, intx, nodma or none",
                    using: "none",
                });
            }
            ("init", Some(v)) if v.starts_with('/') && v.len() <= 64 => self.init = v,
            ("init", _) => {
                return Err(Problem::BadValue {
                    accepted: "an absolute path in the initrd, at most 64 bytes",
                    using: DEFAULT_INIT,
                });
            }
            ("monitor", None) => self.monitor = true,
            ("monitor", Some(_)) => {
                return Err(Problem::BadValue {
                    accepted: "no value",
                    using: "process 1",
                });
            }
            ("net", Some(v)) => {
                self.net = parse_net(v).ok_or(Problem::BadValue {
                    accepted: POLL_RANGE,
                    using: "off",
                })?;
            }
            (k, Some(_)) if TEST_KEYS.contains(&k) => {}
            ("hz" | "log" | "crash" | "net" | "profile", None) => {
                return Err(Problem::BadValue {
                    accepted: "a value after '='",
                    using: "the default",
                });
            }
            _ => return Err(Problem::Unknown),
        }
        Ok(())
    }
}

/// Splits the line at its first lone `--` word: the kernel's words, and the rest (trimmed)
/// for process 1.
fn split_init_args(line: &str) -> (&str, &str) {
    let mut at = 0;
    for word in line.split_whitespace() {
        // Words are subslices of `line`: their offset is where they start.
        let start = word.as_ptr() as usize - line.as_ptr() as usize;
        if word == "--" {
            return (&line[..start], line[start + 2..].trim());
        }
        at = start + word.len();
    }
    (&line[..at], "")
}

/// A rate in 1..=`MAX_HZ` (or 0 where `zero_ok`).
fn parse_hz(v: &str, zero_ok: bool) -> Option<u64> {
    let hz: u64 = v.parse().ok()?;
    ((zero_ok && hz == 0) || (1..=MAX_HZ).contains(&hz)).then_some(hz)
}

fn parse_log(v: &str) -> Option<LogLevel> {
    Some(match v {
        "off" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

fn parse_net(v: &str) -> Option<NetOption> {
    match v {
        "off" | "none" => Some(NetOption::Off),
        "dhcp" => Some(NetOption::Dhcp),
        "poll" => Some(NetOption::Poll {
            hz: DEFAULT_POLL_HZ,
        }),
        _ => {
            let hz = parse_hz(v.strip_prefix("poll:")?, false)?;
            Some(NetOption::Poll { hz })
        }
    }
}

/// The period of a rate accepted above, in ns (never zero).
pub fn period_ns(hz: u64) -> u64 {
    (1_000_000_000 / hz.clamp(1, MAX_HZ)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(line: &str) -> ParsedArgs<'_> {
        BootArgs::parse(line)
    }

    #[test]
    fn good_options_are_taken_without_warnings() {
        let p = parse(
            "test=ping hz=100 log=debug crash=hang pci=nomsi edu=intx net=poll:250 profile=4000",
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let a = p.args;
        assert_eq!(a.test, Some("ping"));
        assert_eq!(a.hz, 100);
        assert_eq!(a.log, LogLevel::Debug);
        assert_eq!(a.crash, Some(CrashOption::Hang));
        assert!(a.pci_no_msi);
        assert_eq!(a.edu, Some("intx"));
        assert_eq!(a.net, NetOption::Poll { hz: 250 });
        assert_eq!(a.profile, 4000);
        assert_eq!(parse("test").args.test, Some(""));
        assert_eq!(parse("net=poll").args.net, NetOption::Poll { hz: 100 });
        assert_eq!(parse("sha1m=ab sha16m=cd").warnings.len(), 0);
    }

    #[test]
    fn words_after_a_lone_double_dash_are_process_one_s() {
        let p = parse("net=dhcp -- utest=net  x=1 -- y");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.args.net, NetOption::Dhcp);
        assert_eq!(p.args.init_args, "utest=net  x=1 -- y");
        assert_eq!(parse("--").args.init_args, "");
        assert_eq!(parse("hz=5 --x").warnings.len(), 1, "--x is a kernel word");
        assert!(parse("monitor").args.monitor);
        assert_eq!(parse("").args.init, DEFAULT_INIT);
        assert_eq!(parse("init=/bin/sh").args.init, "/bin/sh");
    }

    #[test]
    fn later_words_win() {
        assert_eq!(parse("net=dhcp net=off").args.net, NetOption::Off);
        assert_eq!(parse("hz=10 hz=20").args.hz, 20);
    }

    #[test]
    fn each_bad_value_gets_one_warning_and_a_safe_default() {
        for (line, check) in [
            (
                "hz=abc",
                (|a: &BootArgs<'_>| a.hz == 0) as fn(&BootArgs<'_>) -> bool,
            ),
            ("hz=2000000000", |a| a.hz == 0),
            ("hz=-1", |a| a.hz == 0),
            ("log=nonsense", |a| a.log == LogLevel::Info),
            ("net=garbage", |a| a.net == NetOption::Off),
            ("net=poll:2000000000", |a| a.net == NetOption::Off),
            ("net=poll:0", |a| a.net == NetOption::Off),
            ("net=poll:", |a| a.net == NetOption::Off),
            ("crash=sideways", |a| a.crash.is_none()),
            ("pci=msi", |a| !a.pci_no_msi),
            ("edu=lots", |a| a.edu.is_none()),
            ("hz", |a| a.hz == 0),
            ("profile=0", |a| a.profile == 0),
            ("profile=20000", |a| a.profile == 0),
            ("profile", |a| a.profile == 0),
        ] {
            let p = parse(line);
            assert_eq!(p.warnings.len(), 1, "{line}");
            assert!(
                matches!(p.warnings[0].problem, Problem::BadValue { .. }),
                "{line}"
            );
            assert!(check(&p.args), "{line}: {:?}", p.args);
            let text = std::format!("{}", p.warnings[0]);
            assert!(text.contains(line) && text.contains("accepted"), "{text}");
        }
    }

    #[test]
    fn unknown_options_are_reported() {
        let p = parse("quiet foo=bar");
        assert_eq!(p.warnings.len(), 2);
        assert_eq!(p.warnings[1].word, "foo=bar");
        assert_eq!(
            std::format!("{}", p.warnings[0]),
            "boot option 'quiet' is unknown and ignored"
        );
    }

    #[test]
    fn warnings_past_the_table_are_counted() {
        let p = parse("a b c d e f g h i j");
        assert_eq!(p.warnings.len(), MAX_WARNINGS);
        assert_eq!(p.more_warnings, 2);
    }

    proptest! {
        #[test]
        fn any_line_parses_to_bounded_rates(line in "\\PC{0,200}") {
            let p = parse(&line);
            prop_assert!(line.ends_with(p.args.init_args));
            prop_assert!(p.args.hz <= MAX_HZ);
            if let NetOption::Poll { hz } = p.args.net {
                prop_assert!((1..=MAX_HZ).contains(&hz));
                prop_assert!(period_ns(hz) >= 100_000);
            }
        }

        #[test]
        fn any_option_words_parse_to_bounded_rates(
            words in proptest::collection::vec(
                ("(hz|net|log|crash|pci|edu|test|x)", "(=)?", "(poll:)?[0-9a-z]{0,12}"),
                0..8,
            )
        ) {
            let line: std::string::String = words
                .iter()
                .map(|(k, e, v)| std::format!("{k}{e}{v} "))
                .collect();
            let p = parse(&line);
            prop_assert!(line.ends_with(p.args.init_args));
            prop_assert!(p.args.hz <= MAX_HZ);
            if let NetOption::Poll { hz } = p.args.net {
                prop_assert!((1..=MAX_HZ).contains(&hz));
            }
            prop_assert!(period_ns(p.args.hz) >= 1);
        }
    }
}
