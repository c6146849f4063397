//! The initial RAM disk: a tar archive of programs and files, read-only.
//!
//! The build packs the user programs into a POSIX ustar archive (`scripts/lib.sh`,
//! `build_userland`), QEMU loads it with `-initrd` and the device tree's `/chosen` says
//! where. The archive is parsed with `tar-no-std`, which validates every header
//! (checksums, sizes, the terminating blocks) before anything is read; a corrupt
//! archive is one error at boot, and the kernel runs without programs.

use tar_no_std::TarArchiveRef;

/// A validated archive.
pub struct Initrd {
    archive: TarArchiveRef<'static>,
    files: usize,
}

/// Why the archive was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

impl Initrd {
    /// Validates `bytes` as a tar archive.
    pub fn new(bytes: &'static [u8]) -> Result<Initrd, Corrupt> {
        let archive = TarArchiveRef::new(bytes).map_err(|_| Corrupt)?;
        let files = archive.entries().count();
        Ok(Initrd { archive, files })
    }

    /// Number of regular files.
    pub fn len(&self) -> usize {
        self.files
    }

    /// Whether the archive holds no file.
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The contents of `path` (`/bin/hello` or `bin/hello`; `./` prefixes ignored).
    pub fn find(&self, path: &str) -> Option<&'static [u8]> {
        let want = normalize(path);
        self.archive.entries().find_map(|e| {
            let name = e.filename();
            let name = name.as_str().ok()?;
            (normalize(name) == want).then(|| e.data())
        })
    }

    /// Every file: (path without a leading slash, size).
    pub fn files(&self) -> impl Iterator<Item = (heapless::String<100>, usize)> + '_ {
        self.archive.entries().filter_map(|e| {
            let mut name = heapless::String::new();
            name.push_str(normalize(e.filename().as_str().ok()?)).ok()?;
            Some((name, e.size()))
        })
    }
}

fn normalize(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    p.strip_prefix("./").unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A ustar archive of `files` (name, contents), as `tar --format=ustar` writes it.
    fn tar(files: &[(&str, &[u8])]) -> &'static [u8] {
        let mut out = Vec::new();
        for (name, data) in files {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[108..116].copy_from_slice(b"0000000\0");
            h[116..124].copy_from_slice(b"0000000\0");
            let size = std::format!("{:011o}\0", data.len());
            h[124..136].copy_from_slice(size.as_bytes());
            h[136..148].copy_from_slice(b"00000000000\0");
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].fill(b' ');
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            let sum = std::format!("{sum:06o}\0 ");
            h[148..156].copy_from_slice(sum.as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.resize(out.len() + 1024, 0);
        Vec::leak(out)
    }

    #[test]
    fn finds_files_by_path() {
        let rd = Initrd::new(tar(&[
            ("bin/hello", b"\x7fELF..."),
            ("./etc/motd", b"hi\n"),
        ]))
        .unwrap();
        assert_eq!(rd.len(), 2);
        assert_eq!(rd.find("/bin/hello"), Some(&b"\x7fELF..."[..]));
        assert_eq!(rd.find("bin/hello"), Some(&b"\x7fELF..."[..]));
        assert_eq!(rd.find("/etc/motd"), Some(&b"hi\n"[..]));
        assert_eq!(rd.find("/bin/nope"), None);
        let names: Vec<_> = rd
            .files()
            .map(|(n, s)| (std::string::String::from(n.as_str()), s))
            .collect();
        assert_eq!(names[1], ("etc/motd".into(), 3));
    }

    #[test]
    fn corrupt_archives_are_refused_not_trusted() {
        let good = tar(&[("bin/hello", b"abc")]);
        let mut bad = good.to_vec();
        bad[0] ^= 0xff; // name changes, checksum no longer matches
        assert!(Initrd::new(Vec::leak(bad)).is_err());
        assert!(Initrd::new(&good[..700]).is_err());
        assert!(Initrd::new(&[]).is_err());
        let mut huge = good.to_vec();
        huge[124..136].copy_from_slice(b"77777777777\0"); // size past the end
        assert!(Initrd::new(Vec::leak(huge)).is_err());
    }
}
