//! The kernel command line from the loader's load options.
//!
//! QEMU's `-append` reaches an EFI application started by the firmware's
//! `-kernel` support as its load options; the UEFI shell passes the whole
//! command line including the program's own name; a boot entry passes whatever
//! optional data it was given. All are UCS-2 (UEFI 2.10 §9.1). The kernel's
//! options are words; a first word naming an `.efi` file is the program.

use heapless::String;

/// Longest command line kept (the kernel's `bootargs` holds 512).
pub const MAX: usize = 512;

/// Decodes UCS-2 `load options` (little-endian, NUL-terminated or not) into the
/// kernel's command line; characters outside ASCII become `?`.
pub fn from_load_options(raw: &[u8]) -> String<MAX> {
    let mut text: String<MAX> = String::new();
    for unit in raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
    {
        if unit == 0 {
            break;
        }
        let c = match char::from_u32(u32::from(unit)) {
            Some(c) if c.is_ascii() && !c.is_ascii_control() => c,
            Some('\t' | '\n' | '\r') => ' ',
            _ => '?',
        };
        if text.push(c).is_err() {
            break;
        }
    }
    let mut out = String::new();
    let mut words = text.split_whitespace().peekable();
    if words
        .peek()
        .is_some_and(|w| w.to_ascii_lowercase().ends_with(".efi"))
    {
        words.next();
    }
    for (i, w) in words.enumerate() {
        if (i > 0 && out.push(' ').is_err()) || out.push_str(w).is_err() {
            break;
        }
    }
    out
}

/// The command line from a text file (`capstan.txt`): ASCII words, lines joined.
pub fn from_text(raw: &[u8]) -> String<MAX> {
    let mut out = String::new();
    for w in raw
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty() && w.iter().all(|b| b.is_ascii_graphic()))
    {
        let Ok(w) = core::str::from_utf8(w) else {
            continue;
        };
        if (!out.is_empty() && out.push(' ').is_err()) || out.push_str(w).is_err() {
            break;
        }
    }
    out
}

/// Splits `initrd=PATH` off the command line: the loader loads that file (QEMU's EDK2
/// adds `initrd=initrd` when QEMU has `-initrd`; on a disk it names a file on the boot
/// volume) and the kernel never sees the word.
pub fn take_initrd(line: &str) -> (String<MAX>, Option<String<128>>) {
    let mut rest = String::new();
    let mut initrd = None;
    for w in line.split_whitespace() {
        match w.strip_prefix("initrd=") {
            Some(path) if !path.is_empty() => {
                let mut p = String::new();
                if p.push_str(path).is_ok() {
                    initrd = Some(p);
                }
            }
            _ => {
                if (!rest.is_empty() && rest.push(' ').is_err()) || rest.push_str(w).is_err() {
                    break;
                }
            }
        }
    }
    (rest, initrd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .flat_map(u16::to_le_bytes)
            .chain([0, 0])
            .collect()
    }

    #[test]
    fn qemu_append_and_shell_forms() {
        assert_eq!(from_load_options(&ucs2("test=net probe")), "test=net probe");
        assert_eq!(
            from_load_options(&ucs2("FS0:\\EFI\\BOOT\\capstan.EFI  probe\tlog=debug")),
            "probe log=debug"
        );
        assert_eq!(from_load_options(&[]), "");
        assert_eq!(from_load_options(&ucs2("caf\u{e9}")), "caf?");
        // An odd trailing byte is ignored, not a panic.
        assert_eq!(from_load_options(&[b'a', 0, b'b']), "a");
    }

    #[test]
    fn initrd_word() {
        let (rest, initrd) = take_initrd("edu=msi test initrd=initrd");
        assert_eq!(rest, "edu=msi test");
        assert_eq!(initrd.as_deref(), Some("initrd"));
        assert_eq!(take_initrd("probe").1, None);
    }

    #[test]
    fn text_file() {
        assert_eq!(from_text(b"probe\r\nlog=debug\n"), "probe log=debug");
        assert_eq!(from_text(b"\xff\xfe probe"), "probe");
        assert_eq!(from_text(b""), "");
    }
}
