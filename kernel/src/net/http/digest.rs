//! Streaming length + SHA-256 of a body, to check downloads without storing them.
//!
//! The network lab serves fixed 1 MiB and 16 MiB files whose SHA-256 the test
//! knows; hashing each body piece as the parser hands it over proves the bytes
//! arrived intact while the kernel holds only one TCP segment at a time. The hash
//! itself is RustCrypto's `sha2` 0.10 in its portable form (0.11 enables NEON in
//! its aarch64 backend, which is unsound on the soft-float target).

use core::fmt;

use sha2::{Digest as _, Sha256};

/// A SHA-256 value, displayed as 64 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// SHA-256 of `data` in one go.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Parses 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            *byte = u8::try_from(hi << 4 | lo).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Byte count and SHA-256 of a body, updated piece by piece from the parser's sink.
#[derive(Clone, Debug, Default)]
pub struct BodyDigest {
    len: u64,
    sha: Sha256,
}

impl BodyDigest {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        self.len += piece.len() as u64;
        self.sha.update(piece);
    }

    /// Total length and SHA-256 of everything passed to `update`.
    pub fn finish(self) -> (u64, Sha256Digest) {
        (self.len, Sha256Digest(self.sha.finalize().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf") and the
    /// one-million-`a` vector.
    #[test]
    fn fips_180_4_vectors() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Sha256Digest::of(input).to_string(), want);
        }
        let mut d = BodyDigest::new();
        let block = vec![b'a'; 1000];
        for _ in 0..1000 {
            d.update(&block);
        }
        let (len, sha) = d.finish();
        assert_eq!(len, 1_000_000);
        assert_eq!(
            Some(sha),
            Sha256Digest::from_hex(
                "CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E046D39CCC7112CD0"
            )
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let d = Sha256Digest::of(b"capstan");
        assert_eq!(Sha256Digest::from_hex(&d.to_string()), Some(d));
        assert_eq!(Sha256Digest::from_hex("00"), None);
        assert_eq!(Sha256Digest::from_hex(&"g".repeat(64)), None);
        assert_eq!(Sha256Digest::from_hex(&"\u{e9}".repeat(32)), None);
    }
}
