//! Streaming length + SHA-256 of a body, to check downloads without storing them.
//!
//! The network lab serves fixed 1 MiB and 16 MiB files whose SHA-256 the test
//! knows; hashing each body piece as the parser hands it over proves the bytes
//! arrived intact while the client holds only one receive's worth at a time. The hash
//! is RustCrypto's `sha2` 0.10: `Sha256` for one-shot digests, and its block function
//! (`compress256`) behind [`BodyDigest`], which buffers and pads itself so the block
//! function can be swapped for a faster one: [`hardware_blocks`] uses the CPU's
//! SHA-256 instructions through `core::arch` intrinsics (`sha2`'s own aarch64 backend
//! detects CPU features only under an operating system it knows; Capstan's programs ask
//! `/proc/cpuinfo`).

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

/// A SHA-256 block function: hashes whole 64-byte blocks (`blocks.len()` a multiple
/// of 64) into the eight state words.
pub type BlockFn = fn(&mut [u32; 8], &[u8]);

/// `sha2`'s portable block function.
pub fn soft_blocks(state: &mut [u32; 8], blocks: &[u8]) {
    let (whole, _) = blocks.as_chunks::<64>();
    for b in whole {
        sha2::compress256(state, core::slice::from_ref(b.into()));
    }
}

/// FIPS 180-4 §5.3.3: the initial hash value.
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Byte count and SHA-256 of a body, updated piece by piece from the parser's sink.
#[derive(Clone, Debug)]
pub struct BodyDigest {
    len: u64,
    state: [u32; 8],
    buf: [u8; 64],
    blocks: BlockFn,
}

impl Default for BodyDigest {
    fn default() -> Self {
        Self::with_blocks(soft_blocks)
    }
}

impl BodyDigest {
    /// An empty digest over `sha2`'s block function.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty digest over the block function `blocks`.
    pub fn with_blocks(blocks: BlockFn) -> Self {
        BodyDigest {
            len: 0,
            state: H0,
            buf: [0; 64],
            blocks,
        }
    }

    /// Adds the next piece of the body.
    pub fn update(&mut self, mut piece: &[u8]) {
        let held = (self.len % 64) as usize;
        self.len += piece.len() as u64;
        if held > 0 {
            let take = piece.len().min(64 - held);
            self.buf[held..held + take].copy_from_slice(&piece[..take]);
            piece = &piece[take..];
            if held + take < 64 {
                return;
            }
            (self.blocks)(&mut self.state, &self.buf);
        }
        let whole = piece.len() / 64 * 64;
        (self.blocks)(&mut self.state, &piece[..whole]);
        self.buf[..piece.len() - whole].copy_from_slice(&piece[whole..]);
    }

    /// Total length and SHA-256 of everything passed to `update` (FIPS 180-4 §5.1.1
    /// padding: 0x80, zeros, the bit length).
    pub fn finish(mut self) -> (u64, Sha256Digest) {
        let len = self.len;
        let held = (len % 64) as usize;
        let mut tail = [0u8; 128];
        tail[..held].copy_from_slice(&self.buf[..held]);
        tail[held] = 0x80;
        let end = if held < 56 { 64 } else { 128 };
        tail[end - 8..end].copy_from_slice(&(len * 8).to_be_bytes());
        (self.blocks)(&mut self.state, &tail[..end]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        (len, Sha256Digest(out))
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
    fn any_split_matches_sha2() {
        let data: alloc::vec::Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in (0..300).chain([4095, 4096, 4097, 5000]) {
            let want = Sha256Digest::of(&data[..len]);
            let mut d = BodyDigest::new();
            let mut rest = &data[..len];
            while !rest.is_empty() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = 1 + (seed as usize) % rest.len().min(200);
                d.update(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(d.finish(), (len as u64, want), "{len} bytes");
        }
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

/// The SHA-256 block function with the CPU's SHA-256 instructions (FEAT_SHA256), for
/// user programs on aarch64 (where the vector registers are theirs to use).
///
/// # Safety
///
/// The CPU must have the SHA-256 instructions (`/proc/cpuinfo` lists `sha2`);
/// otherwise the returned function executes undefined instructions.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub unsafe fn hardware_blocks() -> BlockFn {
    ce::blocks
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod ce {
    use core::arch::aarch64::*;

    /// SHA-256 round constants (FIPS 180-4 §4.2.2).
    static K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// Only reachable through `hardware_blocks`, whose caller vouches for the CPU.
    pub(super) fn blocks(state: &mut [u32; 8], blocks: &[u8]) {
        // SAFETY: `hardware_blocks`'s contract: this CPU has FEAT_SHA256.
        unsafe { blocks_sha2(state, blocks) }
    }

    #[target_feature(enable = "sha2")]
    unsafe fn blocks_sha2(state: &mut [u32; 8], blocks: &[u8]) {
        // SAFETY: loads and stores stay within `state` (8 words), `K` (64 words) and
        // each 64-byte block; the SHA-256 intrinsics are enabled by this function's
        // target feature, which the caller guarantees the CPU has.
        unsafe {
            let mut abcd = vld1q_u32(state.as_ptr());
            let mut efgh = vld1q_u32(state.as_ptr().add(4));
            let (whole, _) = blocks.as_chunks::<64>();
            for block in whole {
                let (abcd0, efgh0) = (abcd, efgh);
                let mut w = [
                    vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(block.as_ptr()))),
                    vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(block.as_ptr().add(16)))),
                    vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(block.as_ptr().add(32)))),
                    vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(block.as_ptr().add(48)))),
                ];
                for i in 0..16 {
                    let wk = vaddq_u32(w[i % 4], vld1q_u32(K.as_ptr().add(i * 4)));
                    let abcd_prev = abcd;
                    abcd = vsha256hq_u32(abcd, efgh, wk);
                    efgh = vsha256h2q_u32(efgh, abcd_prev, wk);
                    if i < 12 {
                        w[i % 4] = vsha256su1q_u32(
                            vsha256su0q_u32(w[i % 4], w[(i + 1) % 4]),
                            w[(i + 2) % 4],
                            w[(i + 3) % 4],
                        );
                    }
                }
                abcd = vaddq_u32(abcd, abcd0);
                efgh = vaddq_u32(efgh, efgh0);
            }
            vst1q_u32(state.as_mut_ptr(), abcd);
            vst1q_u32(state.as_mut_ptr().add(4), efgh);
        }
    }
}
