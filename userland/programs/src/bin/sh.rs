//! `sh`: the shell on the console.
//!
//! Reads lines with the `line` editor (history, cursor keys), parses them with the
//! `shell` grammar (quotes, `$?`, `;`, `&`) and runs programs from the initrd. A
//! foreground program is named to the kernel with `console_fg`, so Ctrl-C ends it (exit
//! status 130) and not the shell; `&` runs a program in the background as a job.
//! Builtins: `exit [N]`, `jobs`, `wait [%JOB|PID...]`, `history`, `help`. `sh -c LINE`
//! runs one line and exits with its status.
//!
//! The shell holds a copy of init's `Power` capability and hands it on only to
//! `/bin/poweroff` and `/bin/reboot`: every other program starts with nothing but its
//! console handles.
#![no_std]
#![no_main]

use abi::proc::{GRANT_COPY, GrantSpec, STATUS_FAULTED, STATUS_INTERRUPTED, STATUS_KILLED};
use abi::{Error, Handle};
use alloc::string::String;
use alloc::vec::Vec;
use capstan_rt::{Startup, console, entry, println, process, system};
use line::{Editor, Event};
use shell::{Command, Vars};

entry!(main);

/// Longest line taken (a longer one is refused whole).
const MAX_LINE: usize = 1024;
/// Lines remembered.
const HISTORY: usize = 100;
const PROMPT: &str = "capstan$ ";
/// Programs that get the `Power` capability.
const POWER_PROGRAMS: [&str; 2] = ["/bin/poweroff", "/bin/reboot"];

const HELP: &str = "\
Programs are in /bin (ls /bin); each takes --help. Builtins:
  exit [N]            leave the shell (init starts a new one)
  jobs                background jobs still running
  wait [%JOB|PID...]  wait for background jobs (all without arguments)
  history             lines typed so far
  help                this text
Syntax: words, 'quoted', \"quoted with $?\", CMD; CMD, CMD & (background).
Keys: arrows, Home/End, Ctrl-A/E/U/K/W/L, Up/Down for history, Ctrl-C ends the
foreground program (or abandons the line), Ctrl-D on an empty line leaves.";

struct Job {
    id: u32,
    pid: u32,
    line: String,
}

struct Shell {
    editor: Editor,
    status: i32,
    jobs: Vec<Job>,
    next_job: u32,
    power: Option<Handle>,
    pid: u32,
    /// Input read but not yet fed to the editor (typed ahead of the prompt).
    pending: Vec<u8>,
}

/// What the line asked for.
enum Flow {
    Continue,
    Exit(i32),
}

impl Shell {
    fn vars(&self) -> Vars {
        Vars {
            status: self.status,
            pid: self.pid,
        }
    }

    /// Runs one line: every command in it, in order.
    fn run_line(&mut self, line: &str) -> Flow {
        let commands = match shell::parse(line) {
            Ok(c) => c,
            Err(e) => {
                println!("sh: {e}");
                self.status = 2;
                return Flow::Continue;
            }
        };
        for cmd in commands {
            if let Flow::Exit(code) = self.run(&cmd, line) {
                return Flow::Exit(code);
            }
        }
        Flow::Continue
    }

    fn run(&mut self, cmd: &Command, line: &str) -> Flow {
        let expanded = cmd.expand(self.vars());
        let words: Vec<&str> = expanded.iter().map(String::as_str).collect();
        match words[0] {
            "exit" => {
                return match words.get(1).map(|w| w.parse::<i32>()) {
                    None => Flow::Exit(self.status),
                    Some(Ok(n)) => Flow::Exit(n),
                    Some(Err(_)) => {
                        println!("sh: exit: '{}' is not a number", words[1]);
                        self.status = 2;
                        Flow::Continue
                    }
                };
            }
            "jobs" => self.list_jobs(),
            "wait" => self.wait_builtin(&words[1..]),
            "history" => {
                for (i, l) in self.editor.history().enumerate() {
                    println!("{:>4}  {l}", i + 1);
                }
                self.status = 0;
            }
            "help" => {
                println!("{HELP}");
                self.status = 0;
            }
            "cd" => {
                println!(
                    "sh: cd: there are no directories to change to (the initrd and /proc are the file system)"
                );
                self.status = 1;
            }
            _ => self.spawn(&words, cmd.background, line),
        }
        Flow::Continue
    }

    fn spawn(&mut self, words: &[&str], background: bool, line: &str) {
        let path = shell::program_path(words[0]);
        let grants: Vec<GrantSpec> = match self.power {
            Some(h) if POWER_PROGRAMS.contains(&path.as_str()) => alloc::vec![GrantSpec {
                handle: h.raw(),
                rights: 0,
                mode: GRANT_COPY,
            }],
            _ => Vec::new(),
        };
        let pid = match process::spawn(&path, words, &grants) {
            Ok(pid) => pid,
            Err(e) => {
                self.status = match e {
                    Error::ENOENT => {
                        println!(
                            "sh: {}: not found (programs are in /bin: ls /bin)",
                            words[0]
                        );
                        127
                    }
                    Error::ENOEXEC => {
                        println!("sh: {}: not an executable program", words[0]);
                        126
                    }
                    e => {
                        println!("sh: {}: cannot start: {e}", words[0]);
                        126
                    }
                };
                return;
            }
        };
        if background {
            let id = self.next_job;
            self.next_job += 1;
            println!("[{id}] {pid}");
            self.jobs.push(Job {
                id,
                pid,
                line: String::from(line.trim()),
            });
            self.status = 0;
            return;
        }
        let _ = console::set_foreground(Some(pid));
        let r = process::wait(pid);
        let _ = console::set_foreground(None);
        self.status = match r {
            Ok(e) => e.status,
            Err(e) => {
                println!("sh: wait for {pid}: {e}");
                1
            }
        };
        match self.status {
            STATUS_INTERRUPTED => println!("^C"),
            STATUS_KILLED => println!("sh: {}: killed", words[0]),
            STATUS_FAULTED => println!("sh: {}: ended by a fault (see the kernel log)", words[0]),
            _ => {}
        }
    }

    fn list_jobs(&mut self) {
        self.reap_jobs();
        for j in &self.jobs {
            println!("[{}] {} running  {}", j.id, j.pid, j.line);
        }
        self.status = 0;
    }

    fn report(job: &Job, status: i32) {
        println!(
            "[{}] {} done (status {status})  {}",
            job.id, job.pid, job.line
        );
    }

    /// Reports background jobs that ended (without waiting).
    fn reap_jobs(&mut self) {
        let mut i = 0;
        while i < self.jobs.len() {
            match process::wait_nohang(self.jobs[i].pid) {
                Ok(e) => {
                    let job = self.jobs.remove(i);
                    Self::report(&job, e.status);
                }
                Err(Error::EAGAIN) => i += 1,
                Err(_) => {
                    self.jobs.remove(i); // not our child any more
                }
            }
        }
    }

    fn wait_builtin(&mut self, args: &[&str]) {
        let mut wanted: Vec<usize> = Vec::new();
        for a in args {
            let found = match a.strip_prefix('%') {
                Some(id) => id
                    .parse::<u32>()
                    .ok()
                    .and_then(|id| self.jobs.iter().position(|j| j.id == id)),
                None => a
                    .parse::<u32>()
                    .ok()
                    .and_then(|pid| self.jobs.iter().position(|j| j.pid == pid)),
            };
            match found {
                Some(i) => wanted.push(i),
                None => {
                    println!("sh: wait: {a}: no such job");
                    self.status = 127;
                    return;
                }
            }
        }
        if args.is_empty() {
            wanted = (0..self.jobs.len()).collect();
        }
        let pids: Vec<u32> = wanted.iter().map(|&i| self.jobs[i].pid).collect();
        self.status = 0;
        for pid in pids {
            let _ = console::set_foreground(Some(pid));
            let r = process::wait(pid);
            let _ = console::set_foreground(None);
            if let Some(i) = self.jobs.iter().position(|j| j.pid == pid) {
                let job = self.jobs.remove(i);
                match r {
                    Ok(e) => {
                        Self::report(&job, e.status);
                        self.status = e.status;
                    }
                    Err(e) => println!("sh: wait: {pid}: {e}"),
                }
            }
        }
    }

    /// Reads and runs lines until `exit` or Ctrl-D.
    fn interactive(&mut self) -> i32 {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            self.reap_jobs();
            out.clear();
            self.editor.start(PROMPT, &mut out);
            console::write_bytes(&out);
            let event = loop {
                if self.pending.is_empty() {
                    match console::read(&mut buf, u64::MAX) {
                        Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                        Err(Error::ETIMEDOUT) => continue,
                        Err(e) => {
                            println!("sh: console: {e}");
                            return 1;
                        }
                    }
                }
                out.clear();
                let mut event = None;
                let mut used = 0;
                for &b in &self.pending {
                    used += 1;
                    if let Some(e) = self.editor.feed(b, &mut out) {
                        event = Some(e);
                        break;
                    }
                }
                // Bytes after the line stay typed-ahead for the next prompt.
                self.pending.drain(..used);
                console::write_bytes(&out);
                if let Some(e) = event {
                    break e;
                }
            };
            match event {
                Event::Line(line) => {
                    if let Flow::Exit(code) = self.run_line(&line) {
                        return code;
                    }
                }
                Event::Interrupt => self.status = STATUS_INTERRUPTED,
                Event::Eof => return self.status,
                Event::TooLong { len, max } => {
                    println!("sh: line too long: {len} bytes (at most {max}); nothing run");
                    self.status = 2;
                }
            }
        }
    }
}

fn main(startup: &Startup) -> i32 {
    let args: Vec<&str> = startup.args().collect();
    let mut sh = Shell {
        editor: Editor::new(MAX_LINE, HISTORY),
        status: 0,
        jobs: Vec::new(),
        next_job: 1,
        power: system::power_cap(),
        pid: startup.pid(),
        pending: Vec::new(),
    };
    match args.get(1..) {
        Some(["-c", line]) => match sh.run_line(line) {
            Flow::Exit(code) => code,
            Flow::Continue => sh.status,
        },
        Some(["--help" | "-h"]) => {
            println!("usage: sh [-c LINE]\n{HELP}");
            0
        }
        Some([]) | None => sh.interactive(),
        Some(_) => {
            println!("sh: usage: sh [-c LINE]");
            2
        }
    }
}

extern crate alloc;
