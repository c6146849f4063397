//! DNS message syntax: names (with compression pointers) and resource records.
//!
//! Everything here reads bytes a server, or anyone who can reach our port, sent us,
//! so every read is bounds-checked and every failure is `DnsError::Malformed`: never
//! an index panic, never an endless loop. Compression pointers (RFC 1035 §4.1.4) must
//! point strictly before the stretch of name that contains them, so a chain of
//! pointers always moves backwards and ends; real encoders only ever point at a
//! *prior* occurrence, so no valid message is refused by that rule.

use super::DnsError;

/// Longest name on the wire, length octets and root label included (RFC 1035 §3.1).
pub const MAX_NAME: usize = 255;

/// Octets in a message header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;

/// A domain name in wire form (length-prefixed labels, root label excluded), lower-cased
/// so that comparisons follow RFC 4343 (ASCII case-insensitive).
#[derive(Clone, PartialEq, Eq)]
pub struct Name {
    octets: [u8; MAX_NAME],
    len: usize,
}

impl Name {
    const fn root() -> Self {
        Self {
            octets: [0; MAX_NAME],
            len: 0,
        }
    }

    /// Appends one label; a name that would outgrow 255 octets is malformed.
    fn push_label(&mut self, label: &[u8]) -> Result<(), DnsError> {
        // +1 for this label's length octet, +1 for the root label that ends the name.
        let end = self.len + 1 + label.len();
        if end + 1 > MAX_NAME {
            return Err(DnsError::Malformed);
        }
        self.octets[self.len] = label.len() as u8;
        for (dst, src) in self.octets[self.len + 1..end].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        self.len = end;
        Ok(())
    }

    /// The wire form without the root label.
    pub fn as_wire(&self) -> &[u8] {
        &self.octets[..self.len]
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut rest = self.as_wire();
        while let Some((&n, tail)) = rest.split_first() {
            let (label, after) = tail.split_at(usize::from(n).min(tail.len()));
            f.write_str(core::str::from_utf8(label).unwrap_or("?"))?;
            f.write_str(".")?;
            rest = after;
        }
        Ok(())
    }
}

/// Reads the name that starts at `at` in `msg`. Returns it and the offset just past
/// it where it starts (past the first pointer, if it is compressed).
pub fn read_name(msg: &[u8], at: usize) -> Result<(Name, usize), DnsError> {
    let mut name = Name::root();
    let mut pos = at;
    // Start of the stretch being read: a pointer must land before it.
    let mut stretch = at;
    let mut end = None;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Malformed)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok((name, end.unwrap_or(pos + 1))),
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Malformed)?;
                name.push_label(label)?;
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Malformed)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= stretch {
                    return Err(DnsError::Malformed); // forward, self or looping pointer
                }
                end.get_or_insert(pos + 2);
                pos = target;
                stretch = target;
            }
            // 0x40 and 0x80: extended label types (RFC 6891 §5), not used by anyone.
            _ => return Err(DnsError::Malformed),
        }
    }
}

/// One resource record (RFC 1035 §4.1.3); its RDATA is `msg[data..data + data_len]`.
#[derive(Debug)]
pub struct Record {
    /// The owner name.
    pub owner: Name,
    /// TYPE.
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// Offset of the RDATA in the message.
    pub data: usize,
    /// RDLENGTH, checked to lie inside the message.
    pub data_len: usize,
}

/// Reads the record at `at`; returns it and the offset of the next one.
pub fn read_record(msg: &[u8], at: usize) -> Result<(Record, usize), DnsError> {
    let (owner, pos) = read_name(msg, at)?;
    let fixed = msg.get(pos..pos + 10).ok_or(DnsError::Malformed)?;
    let word = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    // fixed: TYPE, CLASS, TTL (4 octets, unused: nothing is cached), RDLENGTH.
    let (rtype, class, data_len) = (word(0), word(2), usize::from(word(8)));
    let data = pos + 10;
    if data + data_len > msg.len() {
        return Err(DnsError::Malformed);
    }
    let record = Record {
        owner,
        rtype,
        class,
        data,
        data_len,
    };
    Ok((record, data + data_len))
}

/// The RDATA of `record`, which `read_record` checked to be inside `msg`.
pub fn rdata<'m>(msg: &'m [u8], record: &Record) -> &'m [u8] {
    msg.get(record.data..record.data + record.data_len)
        .unwrap_or(&[])
}

/// A CNAME record's target: a name that must fill its RDATA exactly (RFC 1035 §3.3.1).
pub fn cname_target(msg: &[u8], record: &Record) -> Result<Name, DnsError> {
    let (target, end) = read_name(msg, record.data)?;
    if end != record.data + record.data_len {
        return Err(DnsError::Malformed);
    }
    Ok(target)
}

/// Encodes a checked host name (`super::check_name`) as wire labels plus the root.
pub fn push_name(out: &mut alloc::vec::Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn wire(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        push_name(&mut v, name);
        v
    }

    /// A message whose first name sits at offset 12, after a dummy header.
    fn msg(body: &[u8]) -> Vec<u8> {
        let mut m = alloc::vec![0u8; HEADER_LEN];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn plain_and_compressed_names() {
        let mut m = msg(&wire("Lab.Capstan.TEST"));
        let (name, end) = read_name(&m, 12).unwrap();
        let lower = wire("lab.capstan.test");
        assert_eq!(
            name.as_wire(),
            &lower[..lower.len() - 1],
            "lower-cased, root dropped"
        );
        assert_eq!(end, m.len());
        // "www" + pointer to "capstan.test" inside the first name (offset 16).
        let at = m.len();
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xc0, 16]);
        let (name, end) = read_name(&m, at).unwrap();
        assert_eq!(
            name,
            read_name(&msg(&wire("www.capstan.test")), 12).unwrap().0
        );
        assert_eq!(
            end,
            at + 6,
            "the offset after a compressed name is past its pointer"
        );
        assert_eq!(alloc::format!("{name:?}"), "www.capstan.test.");
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_malformed() {
        // A pointer to itself.
        assert_eq!(
            read_name(&msg(&[0xc0, 12]), 12).unwrap_err(),
            DnsError::Malformed
        );
        // Two pointers to each other: 12 -> 14 (forward) is already refused.
        let two = msg(&[0xc0, 14, 0xc0, 12]);
        assert_eq!(read_name(&two, 12).unwrap_err(), DnsError::Malformed);
        assert_eq!(read_name(&two, 14).unwrap_err(), DnsError::Malformed);
        // A label, then a pointer back to that label: a loop that grows the name.
        assert_eq!(
            read_name(&msg(&[1, b'a', 0xc0, 12]), 12).unwrap_err(),
            DnsError::Malformed
        );
        // A pointer past the end of the message.
        assert_eq!(
            read_name(&msg(&[0xc3, 0xff]), 12).unwrap_err(),
            DnsError::Malformed
        );
    }

    #[test]
    fn truncated_names_and_reserved_label_types_are_malformed() {
        for bad in [
            &[][..],
            &[3, b'a', b'b'],
            &[1, b'a'],
            &[0xc0],
            &[0x40, 0],
            &[0x80, 0],
        ] {
            assert_eq!(
                read_name(&msg(bad), 12).unwrap_err(),
                DnsError::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_longer_than_255_octets_are_malformed() {
        // 4 labels of 63 octets: 4 * 64 + 1 = 257 > 255 (even when spread over pointers).
        let label = [b'x'; 63];
        let mut body = Vec::new();
        for _ in 0..4 {
            body.push(63);
            body.extend_from_slice(&label);
        }
        body.push(0);
        assert_eq!(read_name(&msg(&body), 12).unwrap_err(), DnsError::Malformed);
        // Three fit: 3 * 64 + 1 = 193.
        assert!(read_name(&msg(&body[64..]), 12).is_ok());
    }

    #[test]
    fn records_are_bounds_checked() {
        let mut body = wire("a.test");
        body.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        let m = msg(&body);
        let (r, next) = read_record(&m, 12).unwrap();
        assert_eq!((r.rtype, r.class, r.data_len, next), (1, 1, 4, m.len()));
        assert_eq!(rdata(&m, &r), &[192, 0, 2, 1]);
        // Every shorter message: the fixed part or the RDATA runs off the end.
        for cut in 12..m.len() {
            assert_eq!(
                read_record(&m[..cut], 12).unwrap_err(),
                DnsError::Malformed,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn cname_target_must_fill_its_rdata() {
        let mut body = wire("a.test");
        let target = wire("b.test");
        body.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0, 60, 0, target.len() as u8]);
        body.extend_from_slice(&target);
        let mut m = msg(&body);
        let (r, _) = read_record(&m, 12).unwrap();
        assert_eq!(
            cname_target(&m, &r).unwrap(),
            read_name(&msg(&target), 12).unwrap().0
        );
        // RDLENGTH one longer than the name (and still inside the message).
        let rdlen_at = 12 + wire("a.test").len() + 9;
        m[rdlen_at] += 1;
        m.push(0);
        let (r, _) = read_record(&m, 12).unwrap();
        assert_eq!(cname_target(&m, &r).unwrap_err(), DnsError::Malformed);
    }
}
